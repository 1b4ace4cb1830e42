from .f1 import load_f1
