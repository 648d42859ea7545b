"""Independent loop references (test oracle) for the convcalc executor."""
