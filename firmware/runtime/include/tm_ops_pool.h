/* pool kernels: parameter structs and entry points. */
#ifndef TM_OPS_POOL_H
#define TM_OPS_POOL_H

#include "tm_runtime.h"

#endif
