"""The processed zone and the warehouse: atomic writes, the harmonized data read back, free-space
checks, and the metadata and checks every table gets."""
