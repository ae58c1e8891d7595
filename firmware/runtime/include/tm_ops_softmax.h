/* softmax kernels: parameter structs and entry points. */
#ifndef TM_OPS_SOFTMAX_H
#define TM_OPS_SOFTMAX_H

#include "tm_runtime.h"

#endif
