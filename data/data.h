// The data layer in one include: datasets, the DataLoader and image output. Depends on core only.
#pragma once
#include "advgrad/data/augment.h"
#include "advgrad/data/cifar.h"
#include "advgrad/data/dataset.h"
#include "advgrad/data/idx.h"
#include "advgrad/data/image_folder.h"
#include "advgrad/data/image_write.h"
#include "advgrad/data/load_dataset.h"
#include "advgrad/data/loader.h"
#include "advgrad/data/mnist.h"
