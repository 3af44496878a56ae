"""Detection: photos in (images, tiling), boxes out (inference, detections), and the
inspection batch that runs detection, georeferencing and reconciliation per photo (pipeline,
and distributed for the same pipeline on Ray)."""
