/* tinymeter calibration microbenchmarks: "layers" that each stress one instruction mix.
 *
 * Why: the layers of NN models execute their instruction classes in nearly fixed
 * proportions (every loop back-edge is a branch, push and pop come in pairs, the
 * reference kernels never divide or use the DSP/FPU), so per-layer cycles of models
 * alone cannot separate the cost model's parameters.  Each function below is a loop
 * whose body repeats one instruction kind, written in inline assembly so the compiler
 * can neither vectorize nor drop it, and so the mix is the same at every -O level.
 *
 * The harness (src/tm_main.c) is unchanged: a generated table (tinymeter.apps.microbench)
 * lists the benchmarks that exist on the target core as tm_layers[], so the profiler
 * hooks, the TM1 report and the virtual board work exactly as for a model.
 *
 * Feature guards: Thumb-2 (ARMv7-M/ARMv8-M mainline) for MLA/MLS/long multiplies,
 * divides and wide register lists; __ARM_FEATURE_DSP for SMLAD; __ARM_FP for VFP.
 * Only low registers r4-r7 are used as scratch so the ARMv6-M (M0+) encodings exist. */
#include <stdint.h>

#include "tm_calib.h"

#define TM_R2(x) x x
#define TM_R4(x) TM_R2(x) TM_R2(x)
#define TM_R8(x) TM_R4(x) TM_R4(x)
#define TM_R16(x) TM_R8(x) TM_R8(x)

/* Iterations of every loop: enough that the stressed instructions dominate the layer
 * (call, hooks and loop overhead are a few percent). */
#define TM_CALIB_ITERS 64u

#if defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2
#define TM_CALIB_THUMB2 1
#else
#define TM_CALIB_THUMB2 0
#endif

/* GCC brackets Thumb-1 inline assembly with ".syntax divided" (and restores unified
 * after it); the benchmarks are written in unified syntax for every core. */
#define TM_UNIFIED ".syntax unified\n"

/* RAM operands of the memory benchmarks; the flash stream reads tm_calib_rom (.rodata). */
static uint32_t tm_calib_ram[64] TM_ALIGNED(8);
static const uint32_t tm_calib_rom[64] TM_ALIGNED(8) = {
    0x01234567u, 0x89abcdefu, 0x02468aceu, 0x13579bdfu, 0x0f1e2d3cu, 0x4b5a6978u, 0x11223344u,
    0x55667788u, 0x99aabbccu, 0xddeeff00u, 0x10203040u, 0x50607080u, 0x90a0b0c0u, 0xd0e0f000u,
    0x0badf00du, 0xdeadbeefu, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 14u, 15u, 16u,
    17u, 18u, 19u, 20u, 21u, 22u, 23u, 24u, 25u, 26u, 27u, 28u, 29u, 30u, 31u, 32u, 33u, 34u, 35u,
    36u, 37u, 38u, 39u, 40u, 41u, 42u, 43u, 44u, 45u, 46u, 47u, 48u};
/* A flash table several times larger than any flash data cache on the shipped boards
 * (2 KiB), walked sequentially by tm_calib_flash_stream: every new flash line misses. */
#define TM_CALIB_STREAM_WORDS 512u
static const uint32_t tm_calib_rom_stream[TM_CALIB_STREAM_WORDS] TM_ALIGNED(32) = {
    [0 ... TM_CALIB_STREAM_WORDS - 1] = 0x5a5a5a5au};
/* Branch pattern of tm_calib_branch_pattern: taken (0) 3 times in 4, irregularly placed. */
static const uint8_t tm_calib_pattern[64] = {
    0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0,
    0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1};

/* One loop: BODY repeated 16 times, then the counter decrement and the back-edge. */
#define TM_CALIB_LOOP(BODY, ...)                                          \
  do {                                                                    \
    uint32_t n_ = TM_CALIB_ITERS;                                         \
    __asm__ volatile(TM_UNIFIED "1:\n" TM_R16(BODY) "subs %[n], %[n], #1\n"          \
                     "bne 1b\n"                                           \
                     : [n] "+l"(n_)                                       \
                     : __VA_ARGS__);                                      \
  } while (0)

/* -- every core ---------------------------------------------------------------------- */

void tm_calib_alu(const void *params) {
  (void)params;
  TM_CALIB_LOOP("adds r4, r4, r5\n", "i"(0) : "r4", "r5", "cc");
}

void tm_calib_mul(const void *params) {
  (void)params;
  TM_CALIB_LOOP("muls r4, r5, r4\n", "i"(0) : "r4", "r5", "cc");
}

/* The NOP hint (0xBF00) spelled out: for ARMv6-M the assembler turns "nop" into
 * MOV r8, r8, an ALU instruction. */
void tm_calib_nop(const void *params) {
  (void)params;
  TM_CALIB_LOOP(".inst.n 0xbf00\n", "i"(0) : "cc");
}

void tm_calib_ldr_ram(const void *params) {
  (void)params;
  TM_CALIB_LOOP("ldr r4, [%[p], #0]\n ldr r5, [%[p], #4]\n ldr r6, [%[p], #8]\n"
                "ldr r4, [%[p], #12]\n",
                [p] "l"(tm_calib_ram) : "r4", "r5", "r6", "cc", "memory");
}

void tm_calib_ldr_flash(const void *params) {
  (void)params;
  TM_CALIB_LOOP("ldr r4, [%[p], #0]\n ldr r5, [%[p], #4]\n ldr r6, [%[p], #8]\n"
                "ldr r4, [%[p], #12]\n",
                [p] "l"(tm_calib_rom) : "r4", "r5", "r6", "cc", "memory");
}

/* Loads that cannot pipeline (an ALU instruction between them): cpi.load apart from
 * load.pipelined, which MB_LDR_RAM's back-to-back loads stress. */
void tm_calib_ldr_alu(const void *params) {
  (void)params;
  TM_CALIB_LOOP("ldr r4, [%[p], #0]\n adds r5, r5, #1\n",
                [p] "l"(tm_calib_ram) : "r4", "r5", "cc", "memory");
}

/* Independent ALU instructions in pairs: what a dual-issue core (M7) starts together. */
void tm_calib_alu_pairs(const void *params) {
  (void)params;
  TM_CALIB_LOOP("adds r4, r4, #1\n adds r5, r5, #1\n", "i"(0) : "r4", "r5", "cc");
}

/* A load whose address the ALU instruction right before it computed: the address
 * generation stall (no forwarding path into the address phase on M3/M4). */
void tm_calib_agu(const void *params) {
  (void)params;
  TM_CALIB_LOOP("mov r4, %[p]\n ldr r5, [r4, #0]\n",
                [p] "l"(tm_calib_ram) : "r4", "r5", "cc", "memory");
}

/* A byte load whose result the next instruction uses: the narrow load-use interlock. */
void tm_calib_narrow_use(const void *params) {
  (void)params;
  TM_CALIB_LOOP("ldrb r4, [%[p], #0]\n adds r5, r4, #1\n",
                [p] "l"(tm_calib_ram) : "r4", "r5", "cc", "memory");
}

/* Sequential word loads through 2 KiB of flash: the flash data path (D-cache misses,
 * wait states); the stall.data weight. */
void tm_calib_flash_stream(const void *params) {
  (void)params;
  uint32_t n_ = TM_CALIB_STREAM_WORDS / 4u;
  const uint32_t *p_ = tm_calib_rom_stream;
  __asm__ volatile(TM_UNIFIED "1:\n ldr r4, [%[p], #0]\n ldr r5, [%[p], #4]\n"
                   "ldr r6, [%[p], #8]\n ldr r7, [%[p], #12]\n adds %[p], %[p], #16\n"
                   "subs %[n], %[n], #1\n bne 1b\n"
                   : [n] "+l"(n_), [p] "+l"(p_)
                   :
                   : "r4", "r5", "r6", "r7", "cc", "memory");
}

/* A loop body of 768 NOPs (1.5 KiB of code): larger than the flash accelerator's
 * instruction cache on the boards that have one, so every line is fetched from flash on
 * every iteration; the stall.ifetch weight (prefetch overlap included). */
void tm_calib_fetch_big(const void *params) {
  (void)params;
  uint32_t n_ = 8u;
  __asm__ volatile(TM_UNIFIED ".balign 32\n1:\n" TM_R16(TM_R16(".inst.n 0xbf00\n"))
                   TM_R16(TM_R16(".inst.n 0xbf00\n")) TM_R16(TM_R16(".inst.n 0xbf00\n"))
                   /* Thumb-1 BNE reaches 256 bytes, B reaches 2 KiB */
                   "subs %[n], %[n], #1\n beq 2f\n b 1b\n 2:\n"
                   : [n] "+l"(n_)
                   :
                   : "cc");
}

void tm_calib_str(const void *params) {
  (void)params;
  TM_CALIB_LOOP("str r4, [%[p], #0]\n str r4, [%[p], #4]\n str r4, [%[p], #8]\n"
                "str r4, [%[p], #12]\n",
                [p] "l"(tm_calib_ram) : "r4", "cc", "memory");
}

/* LDM/STM with 2 and with 4 registers: the class cost and the per-register cost.  The
 * pointer is early-clobber so it never shares a register with the base it restarts from. */
#define TM_CALIB_MULTIPLE(INSN)                                                   \
  do {                                                                            \
    uint32_t n_ = TM_CALIB_ITERS;                                                 \
    uint32_t *p_;                                                                 \
    __asm__ volatile(TM_UNIFIED "1:\n mov %[p], %[base]\n" TM_R8(INSN) "subs %[n], %[n], #1\n" \
                     "bne 1b\n"                                                   \
                     : [n] "+l"(n_), [p] "=&l"(p_)                                \
                     : [base] "l"(tm_calib_ram)                                   \
                     : "r4", "r5", "r6", "r7", "cc", "memory");                   \
  } while (0)

void tm_calib_ldm2(const void *params) {
  (void)params;
  TM_CALIB_MULTIPLE("ldm %[p]!, {r4, r5}\n");
}

void tm_calib_ldm4(const void *params) {
  (void)params;
  TM_CALIB_MULTIPLE("ldm %[p]!, {r4, r5, r6, r7}\n");
}

void tm_calib_stm2(const void *params) {
  (void)params;
  TM_CALIB_MULTIPLE("stm %[p]!, {r4, r5}\n");
}

void tm_calib_stm4(const void *params) {
  (void)params;
  TM_CALIB_MULTIPLE("stm %[p]!, {r4, r5, r6, r7}\n");
}

/* PUSH/POP inside one block (no PC): register saves as in function prologues. */
void tm_calib_pushpop(const void *params) {
  (void)params;
  TM_CALIB_LOOP("push {r4, r5, r6}\n pop {r4, r5, r6}\n", "i"(0) : "r4", "r5", "r6", "cc",
                "memory");
}

/* Call chains: a leaf returning with BX LR, and frames returning with POP {..., PC}
 * (a taken branch that is no branch instruction) with 2 and 5 registers. */
__attribute__((naked, noinline, used)) void tm_calib_leaf_fn(void) { __asm__ volatile("bx lr\n"); }

__attribute__((naked, noinline, used)) void tm_calib_frame2_fn(void) {
  __asm__ volatile("push {r4, lr}\n bl tm_calib_leaf_fn\n pop {r4, pc}\n");
}

__attribute__((naked, noinline, used)) void tm_calib_frame5_fn(void) {
  __asm__ volatile("push {r4, r5, r6, r7, lr}\n pop {r4, r5, r6, r7, pc}\n");
}

void tm_calib_call_leaf(const void *params) {
  (void)params;
  TM_CALIB_LOOP("bl tm_calib_leaf_fn\n", "i"(0) : "r0", "r1", "r2", "r3", "lr", "cc", "memory");
}

void tm_calib_call_frame2(const void *params) {
  (void)params;
  TM_CALIB_LOOP("bl tm_calib_frame2_fn\n", "i"(0) : "r0", "r1", "r2", "r3", "lr", "cc", "memory");
}

void tm_calib_call_frame5(const void *params) {
  (void)params;
  TM_CALIB_LOOP("bl tm_calib_frame5_fn\n", "i"(0) : "r0", "r1", "r2", "r3", "lr", "cc", "memory");
}

/* POP {PC} alone: eight copies of the address of a POP {PC} and one exit address are
 * pushed, then that POP returns to itself eight times and leaves on the ninth.  A
 * taken control transfer that is no branch instruction, with little else around it:
 * this is what separates cpi.branch from branch.taken precisely (ADR needs a word-
 * aligned target on ARMv6-M, hence the .balign; +1 keeps the Thumb bit). */
void tm_calib_pop_chain(const void *params) {
  (void)params;
  /* Four bodies per iteration (not 16): the back-edge BNE must stay in range. */
  uint32_t n = 4u * TM_CALIB_ITERS;
  __asm__ volatile(TM_UNIFIED "1:\n"
                   TM_R4("adr r4, 4f\n adds r4, r4, #1\n push {r4}\n"
                         "adr r4, 2f\n adds r4, r4, #1\n mov r5, r4\n mov r6, r4\n mov r7, r4\n"
                         "push {r4, r5, r6, r7}\n push {r4, r5, r6, r7}\n"
                         ".balign 4\n 2:\n pop {pc}\n .balign 4\n 4:\n")
                   "subs %[n], %[n], #1\n bne 1b\n"
                   : [n] "+l"(n)
                   :
                   : "r4", "r5", "r6", "r7", "cc", "memory");
}

/* Unconditional taken branches: a chain of B to the next instruction. */
void tm_calib_branch_b(const void *params) {
  (void)params;
  TM_CALIB_LOOP("b 2f\n 2:\n", "i"(0) : "cc");
}

/* Conditional branches: a tight counted loop (back-edge taken but once) ... */
void tm_calib_branch_loop(const void *params) {
  (void)params;
  uint32_t n = 16u * TM_CALIB_ITERS;
  __asm__ volatile(TM_UNIFIED "1:\n subs %[n], %[n], #1\n bne 1b\n" : [n] "+l"(n) : : "cc");
}

/* ... a chain of conditional branches to the next instruction (Z is clear from the
 * previous SUBS, so BNE is taken: every block ends in a conditional branch) ... */
void tm_calib_branch_chain(const void *params) {
  (void)params;
  TM_CALIB_LOOP("bne 2f\n 2:\n", "i"(0) : "cc");
}

/* ... and a data-dependent branch over a known pattern (taken 3 times in 4). */
/* 16 conditional branches per iteration taken when bit 1 of the iteration counter is set:
 * outcomes N T T N N T T ... (the counter runs down from 64), of which a 2-bit predictor
 * mispredicts 3 in 4 in the steady state whatever state its counters start in. */
void tm_calib_branch_alternate(const void *params) {
  (void)params;
  TM_CALIB_LOOP("lsls r4, %[n], #30\n bmi 3f\n adds r5, r5, #1\n3:\n", "i"(0) : "r4", "r5", "cc");
}

void tm_calib_branch_pattern(const void *params) {
  (void)params;
  uint32_t i = 0;
  __asm__ volatile(TM_UNIFIED "1:\n ldrb r4, [%[p], %[i]]\n cmp r4, #0\n beq 2f\n adds r5, r5, #1\n"
                   "2:\n adds %[i], %[i], #1\n cmp %[i], #64\n bne 1b\n"
                   : [i] "+l"(i)
                   : [p] "l"(tm_calib_pattern)
                   : "r4", "r5", "cc", "memory");
}

/* -- ARMv7-M / ARMv8-M mainline ---------------------------------------------------------- */
#if TM_CALIB_THUMB2

void tm_calib_mla(const void *params) {
  (void)params;
  TM_CALIB_LOOP("mla r4, r5, r6, r4\n", "i"(0) : "r4", "r5", "r6", "cc");
}

void tm_calib_mls(const void *params) {
  (void)params;
  TM_CALIB_LOOP("mls r4, r5, r6, r4\n", "i"(0) : "r4", "r5", "r6", "cc");
}

void tm_calib_umull(const void *params) {
  (void)params;
  TM_CALIB_LOOP("umull r4, r5, r6, r7\n", "i"(0) : "r4", "r5", "r6", "r7", "cc");
}

void tm_calib_smlal(const void *params) {
  (void)params;
  TM_CALIB_LOOP("smlal r4, r5, r6, r7\n", "i"(0) : "r4", "r5", "r6", "r7", "cc");
}

void tm_calib_umlal(const void *params) {
  (void)params;
  TM_CALIB_LOOP("umlal r4, r5, r6, r7\n", "i"(0) : "r4", "r5", "r6", "r7", "cc");
}

/* Divides with a non-zero divisor (division by zero would trap with DIV_0_TRP set). */
void tm_calib_div(const void *params) {
  (void)params;
  TM_CALIB_LOOP("udiv r4, r5, r6\n sdiv r4, r5, r6\n",
                "i"(0) : "r4", "r5", "r6", "cc");
}

/* A longer register list than ARMv6-M allows: a third point on the per-register line. */
void tm_calib_ldm8(const void *params) {
  (void)params;
  uint32_t n = TM_CALIB_ITERS;
  __asm__ volatile(TM_UNIFIED "1:\n" TM_R8("ldm %[p], {r4, r5, r6, r7, r8, r9, r10, r11}\n")
                   "subs %[n], %[n], #1\n bne 1b\n"
                   : [n] "+l"(n)
                   : [p] "l"(tm_calib_ram)
                   : "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "cc", "memory");
}

/* Unaligned word and halfword loads from RAM (ARMv6-M faults on them: Thumb-2 only):
 * per 4 loads, offsets 1 and 3 mod 4 (byte + halfword + byte: 2 extra transactions each
 * on M3/M4/M33), 2 mod 4 (two halfwords: 1) and an odd halfword (two bytes: 1), 6 extra
 * bus transactions; the same loads as MB_LDR_RAM otherwise, so the difference is the
 * ``unaligned`` parameter. */
void tm_calib_ldr_unaligned(const void *params) {
  (void)params;
  TM_CALIB_LOOP("ldr r4, [%[p], #1]\n ldr r5, [%[p], #6]\n ldrh r6, [%[p], #11]\n"
                "ldr r4, [%[p], #15]\n",
                [p] "l"(tm_calib_ram) : "r4", "r5", "r6", "cc", "memory");
}

#endif /* TM_CALIB_THUMB2 */

/* -- DSP extension ------------------------------------------------------------------- */
#if defined(__ARM_FEATURE_DSP)

void tm_calib_smlad(const void *params) {
  (void)params;
  TM_CALIB_LOOP("smlad r4, r5, r6, r4\n", "i"(0) : "r4", "r5", "r6", "cc");
}

#endif /* __ARM_FEATURE_DSP */

/* -- FPU ------------------------------------------------------------------------------ */
#if defined(__ARM_FP)

/* s0..s3 hold 1.0f so divides and square roots stay finite. */
#define TM_CALIB_VFP(BODY, ...)                                                     \
  do {                                                                              \
    uint32_t n_ = TM_CALIB_ITERS;                                                   \
    __asm__ volatile(TM_UNIFIED "vmov s0, %[one]\n vmov s1, %[one]\n vmov s2, %[one]\n"        \
                     "vmov s3, %[one]\n"                                            \
                     "1:\n" TM_R16(BODY) "subs %[n], %[n], #1\n bne 1b\n"           \
                     : [n] "+l"(n_)                                                 \
                     : [one] "l"(0x3f800000u), [p] "l"(tm_calib_ram)                \
                     : "r4", "s0", "s1", "s2", "s3", "cc", "memory");                   \
  } while (0)

void tm_calib_vadd(const void *params) {
  (void)params;
  TM_CALIB_VFP("vadd.f32 s0, s1, s2\n vmul.f32 s3, s1, s2\n");
}

void tm_calib_vdiv(const void *params) {
  (void)params;
  TM_CALIB_VFP("vdiv.f32 s0, s1, s2\n");
}

void tm_calib_vsqrt(const void *params) {
  (void)params;
  TM_CALIB_VFP("vsqrt.f32 s0, s1\n");
}

void tm_calib_vmla(const void *params) {
  (void)params;
  TM_CALIB_VFP("vmla.f32 s0, s1, s2\n");
}

void tm_calib_vmls(const void *params) {
  (void)params;
  TM_CALIB_VFP("vmls.f32 s0, s1, s2\n");
}

void tm_calib_vfma(const void *params) {
  (void)params;
  TM_CALIB_VFP("vfma.f32 s0, s1, s2\n");
}

void tm_calib_vfms(const void *params) {
  (void)params;
  TM_CALIB_VFP("vfms.f32 s0, s1, s2\n");
}

void tm_calib_vldr(const void *params) {
  (void)params;
  TM_CALIB_VFP("vldr s0, [%[p], #0]\n vldr s1, [%[p], #4]\n");
}

void tm_calib_vstr(const void *params) {
  (void)params;
  TM_CALIB_VFP("vstr s0, [%[p], #0]\n vstr s1, [%[p], #4]\n");
}

/* VMOV between core and FPU registers (2 cycles on the M4, table 7-1). */
void tm_calib_vmov_core(const void *params) {
  (void)params;
  TM_CALIB_VFP("vmov s0, r4\n vmov r4, s1\n");
}

/* VLDR that cannot pipeline (an ALU instruction between): its own cycles. */
void tm_calib_vldr_alu(const void *params) {
  (void)params;
  TM_CALIB_VFP("vldr s0, [%[p], #0]\n adds r4, r4, #1\n");
}

/* VSTR right behind a word load: pipelined like STR behind LDR. */
void tm_calib_ldr_vstr(const void *params) {
  (void)params;
  TM_CALIB_VFP("ldr r4, [%[p], #0]\n vstr s0, [%[p], #4]\n");
}

/* Each VADD consumes the result of the one before: the FPU result-use stall. */
void tm_calib_vfp_dep(const void *params) {
  (void)params;
  TM_CALIB_VFP("vadd.f32 s0, s1, s2\n vadd.f32 s3, s0, s2\n");
}

/* VPUSH/VPOP of four single-precision registers: 1 + N each. */
void tm_calib_vpushpop(const void *params) {
  (void)params;
  TM_CALIB_VFP("vpush {s16, s17, s18, s19}\n vpop {s16, s17, s18, s19}\n");
}

#endif /* __ARM_FP */
