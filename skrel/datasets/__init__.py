from .f1 import load_f1
from .flights import load_flights
