/*
 * Address-program evaluator for the native block hook (included by counthook.c).
 *
 * Why: the cache and flash-interface simulation needs the address of every data
 * access, and a per-access Unicorn memory hook costs ~1 us per access (10x slower
 * runs).  Instead, sim/addrprog.py compiles every distinct block once into a short
 * straight-line program over the registers at block entry; the block hook reads the
 * registers named by the program's regs_mask and calls tm_ap_eval on each execution.
 * Semantics are those of sim/addrprog.py:evaluate (the reference; keep both in step):
 *
 *   [1 ACCESS,     base, index, shift, imm,   flags]  addr = regs[base] + imm
 *                                                       +- (index >= 0 ? regs[index] << shift : 0)
 *   [2 ACCESS_ABS, 0,    0,     0,     addr,  flags]  absolute address
 *   [3 ADDI,       d,    s,     0,     imm,   0]      regs[d] = regs[s] + imm
 *   [4 ADDR,       d,    s,     t,     shift, sign]   regs[d] = regs[s] + sign * (regs[t] << shift)
 *   [5 CONST,      d,    0,     0,     value, 0]      regs[d] = value, valid
 *   [6 KILL,       d,    0,     0,     0,     0]      valid[d] = 0
 *   [7 UNKNOWN,    0,    0,     0,     0,     flags]  an access of unmodelled address form
 *   [8 LOAD,       d,    base,  index, imm,   meta]   regs[d] = memory at block entry at
 *                                                       (base >= 0 ? regs[base] : 0) + imm
 *                                                       + (index >= 0 ? regs[index] << shift : 0)
 *                                                       meta = shift | width << 8 | signed << 12
 *   [9 ALU,        d,    s,     t,     imm,   kind]   regs[d] = regs[s] <kind> x, x = t >= 0 ?
 *                                                       regs[t] : imm (TM_AP_ALU_*; see tm_ap_alu)
 *
 * flags of an access op: bytes (bits 0-11) | store << 12 | subtract index << 13 |
 * conditional << 14 | strict alignment << 15 (an instruction that faults on any
 * unaligned address: all but LDR/STR/LDRH/STRH/LDRSH and their T forms, and TBH; its
 * alignment unit is min(bytes, 4), as for the others).  The callback gets the byte count and TM_AP_* flags; unresolved
 * accesses (an invalid base/index register, or UNKNOWN) come with address 0 and
 * TM_AP_RESOLVED clear.  Arithmetic wraps modulo 2^32 (unsigned).  No allocation,
 * no libc beyond stdint.h.
 *
 * LOAD (pointers the block loads itself: spilled pointers, parameter structs, table
 * lookups) needs guest memory as it is at block entry: call tm_ap_eval_mem with a
 * reader (e.g. uc_mem_read restricted to RAM/flash; it must not touch MMIO).  Without
 * a reader (tm_ap_eval) LOAD just invalidates its register.  sim/addrprog.py only
 * emits a LOAD when no earlier store of the same block can have written that memory.
 */
#ifndef TM_ADDRPROG_H
#define TM_ADDRPROG_H

#include <stdint.h>

#define TM_AP_STORE 1u
#define TM_AP_RESOLVED 2u
#define TM_AP_CONDITIONAL 4u
#define TM_AP_STRICT 8u /* the instruction faults when unaligned (LDM, LDRD, VLDR, LDREX...) */

#define TM_AP_OP_ACCESS 1
#define TM_AP_OP_ACCESS_ABS 2
#define TM_AP_OP_ADDI 3
#define TM_AP_OP_ADDR 4
#define TM_AP_OP_CONST 5
#define TM_AP_OP_KILL 6
#define TM_AP_OP_UNKNOWN 7
#define TM_AP_OP_LOAD 8
#define TM_AP_OP_ALU 9

enum {
    TM_AP_ALU_AND = 1, TM_AP_ALU_ORR, TM_AP_ALU_EOR, TM_AP_ALU_BIC, TM_AP_ALU_LSL,
    TM_AP_ALU_LSR, TM_AP_ALU_ASR, TM_AP_ALU_MUL, TM_AP_ALU_RSB, TM_AP_ALU_SXTB,
    TM_AP_ALU_SXTH, TM_AP_ALU_UXTB, TM_AP_ALU_UXTH
};
#define TM_AP_OP_WORDS 6u

#define TM_AP_F_BYTES 0xFFFu
#define TM_AP_F_STORE (1u << 12)
#define TM_AP_F_SUBTRACT (1u << 13)
#define TM_AP_F_CONDITIONAL (1u << 14)
#define TM_AP_F_STRICT (1u << 15)
/* bits 16-31 of an access's flags: its instruction's byte offset in the block, passed
 * through to the access callback in the same bits */
#define TM_AP_F_OFFSET 0xFFFF0000u
#define TM_AP_LOAD_SIGNED (1u << 12)

typedef void (*tm_access_fn)(void *user, uint32_t address, uint32_t bytes, uint32_t flags);
/* Little-endian value of `bytes` (1, 2 or 4) bytes at `address` into *value; returns 1 if
 * the memory was readable, 0 otherwise. */
typedef int (*tm_read_fn)(void *user, uint32_t address, uint32_t bytes, uint32_t *value);

static inline uint32_t tm_ap_flags(uint32_t f, int resolved) {
    return ((f & TM_AP_F_STORE) ? TM_AP_STORE : 0u) | (resolved ? TM_AP_RESOLVED : 0u)
           | ((f & TM_AP_F_CONDITIONAL) ? TM_AP_CONDITIONAL : 0u)
           | ((f & TM_AP_F_STRICT) ? TM_AP_STRICT : 0u);
}

/* regs[d] of an ALU op: a = regs[s], x = regs[t] or the immediate (sim/addrprog.py:alu). */
static inline uint32_t tm_ap_alu(int32_t kind, uint32_t a, uint32_t x) {
    uint32_t n = x & 0xFFu;
    switch (kind) {
    case TM_AP_ALU_AND: return a & x;
    case TM_AP_ALU_ORR: return a | x;
    case TM_AP_ALU_EOR: return a ^ x;
    case TM_AP_ALU_BIC: return a & ~x;
    case TM_AP_ALU_LSL: return n < 32u ? a << n : 0u;
    case TM_AP_ALU_LSR: return n < 32u ? a >> n : 0u;
    case TM_AP_ALU_ASR: {
        uint32_t sh = n < 31u ? n : 31u;
        uint32_t sign = (a & 0x80000000u) ? ~(0xFFFFFFFFu >> sh) : 0u;
        return (a >> sh) | sign;
    }
    case TM_AP_ALU_MUL: return a * x;
    case TM_AP_ALU_RSB: return x - a;
    case TM_AP_ALU_SXTB: return (a & 0x80u) ? (a | 0xFFFFFF00u) : (a & 0xFFu);
    case TM_AP_ALU_SXTH: return (a & 0x8000u) ? (a | 0xFFFF0000u) : (a & 0xFFFFu);
    case TM_AP_ALU_UXTB: return a & 0xFFu;
    case TM_AP_ALU_UXTH: return a & 0xFFFFu;
    default: return 0u;
    }
}

static inline void tm_ap_load(const int32_t *op, uint32_t regs[16], uint8_t valid[16],
                              tm_read_fn read, void *read_user) {
    uint32_t d = (uint32_t)op[1] & 15u, meta = (uint32_t)op[5];
    uint32_t address = (uint32_t)op[4], width = (meta >> 8) & 15u, value = 0;
    int ok = read != 0;
    if (op[2] >= 0) {
        ok = ok && valid[op[2] & 15];
        address += regs[op[2] & 15];
    }
    if (op[3] >= 0) {
        ok = ok && valid[op[3] & 15];
        address += regs[op[3] & 15] << (meta & 31u);
    }
    if (ok && (width == 1u || width == 2u || width == 4u)) ok = read(read_user, address, width, &value);
    else ok = 0;
    if (ok && width < 4u) {
        uint32_t bits = 8u * width;
        value &= (1u << bits) - 1u;
        if ((meta & TM_AP_LOAD_SIGNED) && (value >> (bits - 1u))) value |= ~((1u << bits) - 1u);
    }
    regs[d] = ok ? value : 0u;
    valid[d] = (uint8_t)(ok != 0);
}

/* Evaluate n_ops ops (rows of TM_AP_OP_WORDS int32) over regs/valid (both modified);
 * LOAD reads guest memory through `read` (may be 0: LOAD then invalidates). */
static inline void tm_ap_eval_mem(const int32_t *ops, uint32_t n_ops, uint32_t regs[16],
                                  uint8_t valid[16], tm_access_fn emit, void *user,
                                  tm_read_fn read, void *read_user) {
    for (uint32_t i = 0; i < n_ops; i++, ops += TM_AP_OP_WORDS) {
        uint32_t a = (uint32_t)ops[1] & 15u, b = (uint32_t)ops[2] & 15u;
        uint32_t c = (uint32_t)ops[3], d = (uint32_t)ops[4], f = (uint32_t)ops[5];
        switch (ops[0]) {
        case TM_AP_OP_ACCESS: {
            int has_index = ops[2] >= 0;
            int ok = valid[a] && (!has_index || valid[b]);
            uint32_t address = 0;
            if (ok) {
                address = regs[a] + d;
                if (has_index) {
                    uint32_t step = regs[b] << (c & 31u);
                    address = (f & TM_AP_F_SUBTRACT) ? address - step : address + step;
                }
            }
            emit(user, address, f & TM_AP_F_BYTES, tm_ap_flags(f, ok) | (f & TM_AP_F_OFFSET));
            break;
        }
        case TM_AP_OP_ACCESS_ABS:
            emit(user, d, f & TM_AP_F_BYTES, tm_ap_flags(f, 1) | (f & TM_AP_F_OFFSET));
            break;
        case TM_AP_OP_UNKNOWN:
            emit(user, 0, f & TM_AP_F_BYTES, tm_ap_flags(f, 0) | (f & TM_AP_F_OFFSET));
            break;
        case TM_AP_OP_ADDI:
            regs[a] = regs[b] + d;
            valid[a] = valid[b];
            break;
        case TM_AP_OP_ADDR: {
            uint32_t step = regs[(uint32_t)ops[3] & 15u] << (d & 31u);
            regs[a] = ops[5] < 0 ? regs[b] - step : regs[b] + step;
            valid[a] = (uint8_t)(valid[b] && valid[(uint32_t)ops[3] & 15u]);
            break;
        }
        case TM_AP_OP_CONST:
            regs[a] = d;
            valid[a] = 1;
            break;
        case TM_AP_OP_KILL:
            valid[a] = 0;
            break;
        case TM_AP_OP_LOAD:
            tm_ap_load(ops, regs, valid, read, read_user);
            break;
        case TM_AP_OP_ALU: {
            int has_t = ops[3] >= 0;
            uint32_t t = (uint32_t)ops[3] & 15u;
            uint32_t x = has_t ? regs[t] : d;
            regs[a] = tm_ap_alu(ops[5], regs[b], x);
            valid[a] = (uint8_t)(valid[b] && (!has_t || valid[t]));
            break;
        }
        default:
            break;
        }
    }
}

/* The spec'd entry point: tm_ap_eval_mem without a memory reader. */
static inline void tm_ap_eval(const int32_t *ops, uint32_t n_ops, uint32_t regs[16],
                              uint8_t valid[16], tm_access_fn emit, void *user) {
    tm_ap_eval_mem(ops, n_ops, regs, valid, emit, user, 0, 0);
}

#endif /* TM_ADDRPROG_H */
