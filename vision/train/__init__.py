"""Training and model release: Pascal VOC annotations, the YOLO training set and training
runs, post-training quantization, detection metrics and evaluation, and the model card."""
