#include "onnx/load_onnx.h"

#include "onnx/onnx_pb.h"
