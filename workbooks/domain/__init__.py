"""Tabula's rules in pure Python: value types, validation and how operations apply. No Django here."""
