/* Parameter structs and entry points of every kernel. One header per op family. */
#ifndef TM_OPS_H
#define TM_OPS_H

#include "tm_runtime.h"
#include "tm_ops_conv.h"
#include "tm_ops_pool.h"
#include "tm_ops_softmax.h"
#include "tm_ops_elementwise.h"
#include "tm_ops_reshape.h"
#include "tm_ops_float.h"
#include "tm_ops_misc.h"
#include "tm_ops_movement.h"
#include "tm_ops_activations.h"
#include "tm_ops_binary.h"
#include "tm_ops_resize.h"
#include "tm_ops_indexing.h"
#include "tm_ops_int16.h"
#include "tm_ops_transpose_conv.h"
#include "tm_ops_unary_math.h"
#include "tm_ops_batch_matmul.h"
#include "tm_ops_svdf.h"
#include "tm_ops_lstm.h"

#endif /* TM_OPS_H */
