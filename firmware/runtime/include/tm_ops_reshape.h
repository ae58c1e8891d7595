/* reshape kernels: parameter structs and entry points. */
#ifndef TM_OPS_RESHAPE_H
#define TM_OPS_RESHAPE_H

#include "tm_runtime.h"

#endif
