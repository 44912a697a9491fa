"""Deployment: fast inference paths, ONNX/TorchScript export, int8 quantization, batch prediction."""
