/* tinymeter calibration microbenchmarks (tm_calib.c): every benchmark has the kernel
 * signature, so the generated table can list them as tm_layers[] of the unchanged
 * harness.  Which ones exist depends on the core (see the guards in tm_calib.c). */
#ifndef TM_CALIB_H
#define TM_CALIB_H

#include "tm_runtime.h"

void tm_calib_leaf_fn(void);
void tm_calib_frame2_fn(void);
void tm_calib_frame5_fn(void);

void tm_calib_alu(const void *params);
void tm_calib_mul(const void *params);
void tm_calib_nop(const void *params);
void tm_calib_ldr_ram(const void *params);
void tm_calib_ldr_flash(const void *params);
void tm_calib_str(const void *params);
void tm_calib_ldr_alu(const void *params);
void tm_calib_alu_pairs(const void *params);
void tm_calib_agu(const void *params);
void tm_calib_narrow_use(const void *params);
void tm_calib_flash_stream(const void *params);
void tm_calib_fetch_big(const void *params);
void tm_calib_ldm2(const void *params);
void tm_calib_ldm4(const void *params);
void tm_calib_stm2(const void *params);
void tm_calib_stm4(const void *params);
void tm_calib_pushpop(const void *params);
void tm_calib_call_leaf(const void *params);
void tm_calib_call_frame2(const void *params);
void tm_calib_call_frame5(const void *params);
void tm_calib_pop_chain(const void *params);
void tm_calib_branch_b(const void *params);
void tm_calib_branch_loop(const void *params);
void tm_calib_branch_chain(const void *params);
void tm_calib_branch_alternate(const void *params);
void tm_calib_branch_pattern(const void *params);
/* Thumb-2 (ARMv7-M, ARMv8-M mainline) */
void tm_calib_mla(const void *params);
void tm_calib_mls(const void *params);
void tm_calib_umull(const void *params);
void tm_calib_smlal(const void *params);
void tm_calib_umlal(const void *params);
void tm_calib_div(const void *params);
void tm_calib_ldm8(const void *params);
void tm_calib_ldr_unaligned(const void *params);
/* DSP extension */
void tm_calib_smlad(const void *params);
/* FPU */
void tm_calib_vadd(const void *params);
void tm_calib_vdiv(const void *params);
void tm_calib_vsqrt(const void *params);
void tm_calib_vmla(const void *params);
void tm_calib_vmls(const void *params);
void tm_calib_vfma(const void *params);
void tm_calib_vfms(const void *params);
void tm_calib_vldr(const void *params);
void tm_calib_vstr(const void *params);
void tm_calib_vmov_core(const void *params);
void tm_calib_vldr_alu(const void *params);
void tm_calib_ldr_vstr(const void *params);
void tm_calib_vfp_dep(const void *params);
void tm_calib_vpushpop(const void *params);

#endif /* TM_CALIB_H */
