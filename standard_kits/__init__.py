"""Standard low-voltage kits, materials, design rules and checklist cards as validated data.

A leaf package: it imports nothing else from the repository. Use :func:`load_catalogue` for the
bundled data (cached) or :func:`read_catalogue` on another folder laid out the same way.
"""

from standard_kits.catalogue import Catalogue, UnknownCode
from standard_kits.loader import PACKAGE_ROOT, data_files, load_catalogue, read_catalogue
from standard_kits.validation import CatalogueError, check_catalogue

__all__ = [
    "PACKAGE_ROOT",
    "Catalogue",
    "CatalogueError",
    "UnknownCode",
    "check_catalogue",
    "data_files",
    "load_catalogue",
    "read_catalogue",
]
