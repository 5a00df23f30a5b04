// The data layer in one include: datasets, the DataLoader and image output. Depends on core only.
#pragma once
#include "data/augment.h"
#include "data/cifar.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/image_write.h"
#include "data/load_dataset.h"
#include "data/loader.h"
#include "data/mnist.h"
