"""Unit conversions. Names carry units; these constants keep the arithmetic honest."""

ANGSTROM_PER_UM = 1.0e4
ANGSTROM_PER_NM = 10.0
NM_PER_UM = 1.0e3
UM_PER_INCH = 25_400.0
