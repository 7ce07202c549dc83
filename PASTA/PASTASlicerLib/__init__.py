"""PASTASlicerLib: the Slicer-side helpers of the PASTA extension.

They translate between MRML nodes and the Slicer-free core (:mod:`PASTALib`) and import only
MRML/VTK (never Qt), so they run in Slicer and, for tests, on the real MRML classes of the PyPI
package ``slicer-core``.
"""
