#include "core/backend.h"

namespace advgrad {

Backend& backend_for(Device device) { return device == Device::CPU ? cpu_backend() : reference_backend(); }

}  // namespace advgrad
