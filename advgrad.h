// Everything a program needs from advgrad, in one include.
#pragma once
#include "autograd/engine.h"
#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/backend.h"
#include "core/grad_mode.h"
#include "core/parallel.h"
#include "core/tensor.h"
