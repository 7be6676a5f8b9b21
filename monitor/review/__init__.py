"""The monthly service review: figures (`figures`) and their HTML/PDF/CSV rendering (`render`)."""
