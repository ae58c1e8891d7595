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
 *
 * flags of an access op: bytes (bits 0-11) | store << 12 | subtract index << 13 |
 * conditional << 14.  The callback gets the byte count and TM_AP_* flags; unresolved
 * accesses (an invalid base/index register, or UNKNOWN) come with address 0 and
 * TM_AP_RESOLVED clear.  Arithmetic wraps modulo 2^32 (unsigned).  No allocation,
 * no libc beyond stdint.h.
 */
#ifndef TM_ADDRPROG_H
#define TM_ADDRPROG_H

#include <stdint.h>

#define TM_AP_STORE 1u
#define TM_AP_RESOLVED 2u
#define TM_AP_CONDITIONAL 4u

#define TM_AP_OP_ACCESS 1
#define TM_AP_OP_ACCESS_ABS 2
#define TM_AP_OP_ADDI 3
#define TM_AP_OP_ADDR 4
#define TM_AP_OP_CONST 5
#define TM_AP_OP_KILL 6
#define TM_AP_OP_UNKNOWN 7
#define TM_AP_OP_WORDS 6u

#define TM_AP_F_BYTES 0xFFFu
#define TM_AP_F_STORE (1u << 12)
#define TM_AP_F_SUBTRACT (1u << 13)
#define TM_AP_F_CONDITIONAL (1u << 14)

typedef void (*tm_access_fn)(void *user, uint32_t address, uint32_t bytes, uint32_t flags);

static inline uint32_t tm_ap_flags(uint32_t f, int resolved) {
    return ((f & TM_AP_F_STORE) ? TM_AP_STORE : 0u) | (resolved ? TM_AP_RESOLVED : 0u)
           | ((f & TM_AP_F_CONDITIONAL) ? TM_AP_CONDITIONAL : 0u);
}

/* Evaluate n_ops ops (rows of TM_AP_OP_WORDS int32) over regs/valid (both modified). */
static inline void tm_ap_eval(const int32_t *ops, uint32_t n_ops, uint32_t regs[16],
                              uint8_t valid[16], tm_access_fn emit, void *user) {
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
            emit(user, address, f & TM_AP_F_BYTES, tm_ap_flags(f, ok));
            break;
        }
        case TM_AP_OP_ACCESS_ABS:
            emit(user, d, f & TM_AP_F_BYTES, tm_ap_flags(f, 1));
            break;
        case TM_AP_OP_UNKNOWN:
            emit(user, 0, f & TM_AP_F_BYTES, tm_ap_flags(f, 0));
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
        default:
            break;
        }
    }
}

#endif /* TM_ADDRPROG_H */
