/* conv kernels: parameter structs and entry points. */
#ifndef TM_OPS_CONV_H
#define TM_OPS_CONV_H

#include "tm_runtime.h"

#endif
