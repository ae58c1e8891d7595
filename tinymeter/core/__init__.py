"""Layer 0, the bottom of the dependency order: error types, the core table, board files
(and their peripheral maps, SVD reader), atomic file writes and the text table renderer.

Imports nothing else of tinymeter; every other layer may import it.
"""
