/* elementwise kernels: parameter structs and entry points. */
#ifndef TM_OPS_ELEMENTWISE_H
#define TM_OPS_ELEMENTWISE_H

#include "tm_runtime.h"

#endif
