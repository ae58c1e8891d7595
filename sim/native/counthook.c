/*
 * Native Unicorn block hook for tinymeter: counts block executions per
 * (block address, block size, current layer).
 *
 * Why native: a Python block hook runs at 2-12 MIPS; this C callback keeps
 * Unicorn at a few hundred MIPS, which is what makes emulating whole models
 * practical.  The file is built by setup.py as the extension module
 * tinymeter.sim._counthook only so that setuptools compiles and installs it;
 * Python loads the same shared object with ctypes and registers
 * tm_block_hook through uc_hook_add.  The object does NOT link libunicorn:
 * the two Unicorn entry points it needs (uc_reg_read, uc_emu_stop) are
 * passed in as function pointers resolved by Python from the library the
 * unicorn binding already loaded, so there is exactly one libunicorn in the
 * process.
 *
 * Ownership: the tm_ctx struct is allocated by Python (ctypes Structure, its
 * layout mirrored in sim/native_hook.py; tm_ctx_size() lets Python check the
 * layout).  The hash table it points to is owned by C: tm_ctx_init()
 * allocates it, the hook grows it (rehash at 70% load), tm_ctx_release()
 * frees it.  If growing fails the hook sets TM_FLAG_OOM and stops emulation
 * instead of losing counts silently.
 *
 * Layer attribution: on entry of a block that starts at prof_begin_addr the
 * hook reads r0 into current_layer before counting that block; at
 * prof_end_addr it sets current_layer = -1 before counting.  So the body of
 * tm_prof_begin is attributed to the layer, the body of tm_prof_end is not.
 * The optional "event" pair (TFLM MicroProfiler::BeginEvent/EndEvent) works
 * the same way but takes the layer id from an auto-incremented counter
 * (modulo evt_wrap when non-zero), because the C++ methods receive a tag
 * string, not an index.  At each BeginEvent the hook also records the tag
 * pointer (r1: r0 is `this`) into evt_tags[event id] when a tag array was
 * given, so Python can name the layers after the run.
 *
 * Cycles: when the hook meets a (block address, size) it has never seen it
 * calls cost_fn once (a ctypes callback into the Python cost model), which
 * fills a tm_block_desc: the block's static core cycles, the extra cycles of
 * a taken / not-taken end, how the block ends, and its address program (see
 * tm_addrprog.h).  The descriptor is kept in a second table keyed by
 * (address, size) only, so a block executed in several layers is costed
 * once.  Cycles are fixed point with TM_CYCLE_FRAC_BITS fractional bits.
 *
 * Dynamic timing (tm_timing.h) is what makes the estimate follow the
 * program rather than averages:
 *  - branch outcomes: a block ending in a conditional branch is charged its
 *    taken or not-taken cost when the next block starts (the successor tells
 *    which), and the entry counts both outcomes;
 *  - instruction fetch: each executed block's code units (flash access
 *    width) go through the flash accelerator's or L1 instruction cache and
 *    the flash prefetch stream; misses stall by the region's wait states;
 *  - data: the block's address program turns the registers at block entry
 *    into its loads and stores, counted per memory region and sent through
 *    the flash data cache / L1 data cache, stalling by wait states.
 * Every execution adds base + branch + weighted stalls to the running 64-bit
 * counter ctx->cycles (what the emulated DWT CYCCNT / SysTick read) and to
 * the (block, layer) entry, whose per-mechanism sums Python exports.  A
 * failed cost callback sets TM_FLAG_COST and stops the run.
 */
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm_addrprog.h"

#define TM_ABI_VERSION 6u
#define TM_CYCLE_FRAC_BITS 16u /* cycles are stored x 2^16 */
#define TM_ONE ((uint64_t)1 << TM_CYCLE_FRAC_BITS)
#define TM_NO_ADDR UINT64_MAX
#define TM_FLAG_BUDGET 1u
#define TM_FLAG_OOM 2u
#define TM_FLAG_COST 4u
#define TM_FLAG_ALARM 8u
#define TM_ARM_REG_R0 66 /* UC_ARM_REG_R0 in unicorn/arm.h; R0..R12 are consecutive */
#define TM_ARM_REG_R1 67
#define TM_ARM_REG_SP 12 /* UC_ARM_REG_SP */
#define TM_ARM_REG_LR 10 /* UC_ARM_REG_LR */
#define TM_SCB_CCR 0xE000ED14u
#define TM_CCR_DC (1u << 16)
#define TM_CCR_IC (1u << 17)

/* How a block ends (tm_block_desc.end_kind). */
#define TM_END_NONE 0u        /* falls through or ends in a non-branch */
#define TM_END_TAKEN 1u       /* unconditional branch, call or return: always taken */
#define TM_END_CONDITIONAL 2u /* conditional branch (B<cond>, CBZ, CBNZ): successor decides */
#define TM_END_SKIP 3u        /* never executes (an intercepted ABI entry): counted, costs 0 */
#define TM_END_PREDICTED 4u   /* conditional, on a core that predicts it: a 2-bit counter per
                                 branch predicts the outcome; only a misprediction costs
                                 (taken / not_taken: the cost of each mispredicted outcome) */

/* Memory kinds (tm_region.kind) and the access buckets of the statistics. */
#define TM_KIND_FLASH 0u
#define TM_KIND_SRAM 1u
#define TM_KIND_TCM 2u
#define TM_KIND_PERIPH 3u
#define TM_KIND_OTHER 4u
#define TM_BUCKET_UNRESOLVED 5u
#define TM_NBUCKETS 6u
#define TM_MAX_REGIONS 8u

/* Per-entry statistics columns (exported as a uint64 matrix; mirrored in native_hook.py). */
enum {
    TM_S_COUNT = 0,
    TM_S_CYCLES,        /* fixed point: everything this row cost */
    TM_S_TAKEN,         /* executions whose last branch was taken */
    TM_S_NOT_TAKEN,     /* executions whose conditional end fell through */
    TM_S_BRANCH,        /* fixed point: taken / not-taken costs charged */
    TM_S_IFETCH,        /* fixed point: raw instruction-fetch stall cycles (unweighted) */
    TM_S_DATA,          /* fixed point: raw data-memory stall cycles (unweighted) */
    TM_S_IC_HIT,        /* instruction-cache lookups (flash accelerator or L1) */
    TM_S_IC_MISS,
    TM_S_DC_HIT,        /* data-cache lookups */
    TM_S_DC_MISS,
    TM_S_SEAM_PIPE,     /* executions whose first load pipelined behind the fall-through */
    TM_S_SEAM_PAIR,     /* executions whose first ALU instruction paired with it */
    TM_S_MISPREDICT,    /* outcomes of a predicted end branch the predictor got wrong */
    TM_S_LOADS,         /* TM_NBUCKETS columns: loads per memory kind, then unresolved */
    TM_S_STORES = TM_S_LOADS + TM_NBUCKETS,
    TM_S_LOAD_BYTES = TM_S_STORES + TM_NBUCKETS,
    /* TM_NBUCKETS columns: extra bus transactions of unaligned loads and stores the core
     * splits (TM_UNALIGNED_*), per memory kind; charged timing.unaligned_cycles each */
    TM_S_UNALIGNED = TM_S_LOAD_BYTES + TM_NBUCKETS,
    TM_S_ALIGN_FAULTS = TM_S_UNALIGNED + TM_NBUCKETS, /* unaligned accesses that fault on
                                                         the core (not priced) */
    TM_S_FLASH_READS,   /* reads of the flash array in access units: demand fetches, prefetches
                           (also those discarded), data-cache misses, L1 line fills */
    TM_S_COLUMNS
};

/* How the core handles an unaligned single load/store (tm_timing_config.unaligned_rule). */
#define TM_UNALIGNED_FAULT 0u  /* ARMv6-M: every unaligned access faults */
#define TM_UNALIGNED_AHB 1u    /* M3/M4/M33: split into aligned halfword/byte transactions */
#define TM_UNALIGNED_PAIR 2u   /* M7: two aligned accesses */

typedef int (*tm_reg_read_fn)(void *uc, int regid, void *value);
typedef int (*tm_reg_read_batch_fn)(void *uc, int *regs, void **vals, int count);
typedef int (*tm_mem_read_fn)(void *uc, uint64_t address, void *bytes, uint64_t size);
typedef int (*tm_emu_stop_fn)(void *uc);

/* What the cost callback tells about one block (filled by Python, see costmodel.py). */
typedef struct tm_block_desc {
    uint64_t base;       /* fixed point: core cycles of one execution, no memory stalls */
    uint64_t taken;      /* fixed point: extra cycles when the block's end branch is taken */
    uint64_t not_taken;  /* fixed point: extra cycles when a conditional end falls through */
    int64_t seam_pipe;   /* fixed point: cycle change when the first load pipelines behind
                            the block that fell through into this one */
    int64_t seam_pair;   /* fixed point: cycle change when the first ALU instruction pairs */
    const int32_t *ops;  /* address program, TM_AP_OP_WORDS int32 per op (copied by C) */
    uint32_t n_ops;
    uint32_t regs_mask;  /* registers the program reads at block entry */
    uint32_t end_kind;
    uint32_t error;      /* non-zero: the callback failed (stop the run) */
    uint32_t head;       /* TM_HEAD_* | register mask << 16 (see blocks.Seam) */
    uint32_t tail;       /* TM_TAIL_* | TM_TAIL_PAIRS | load destination mask << 16 */
    uint32_t tail_written; /* registers the last instruction writes (pairing) */
    uint32_t predictor;  /* TM_END_PREDICTED: TM_PREDICT_* */
} tm_block_desc;

#define TM_PREDICT_2BIT 0u       /* saturating counter, starts weakly not taken */
#define TM_PREDICT_1BIT 1u       /* repeats the last outcome, starts not taken */
#define TM_PREDICT_2BIT_TAKEN 2u /* saturating counter, starts weakly taken */

#define TM_HEAD_LOAD 1u
#define TM_HEAD_ALU 2u
#define TM_TAIL_LOAD 1u
#define TM_TAIL_STORE_IMM 2u
#define TM_TAIL_KIND 3u
#define TM_TAIL_PAIRS 4u
/* Returns nothing; fills *out (zeroed by C before the call). */
typedef void (*tm_cost_fn)(void *user, uint32_t addr, uint32_t size, tm_block_desc *out);

/* One memory region of the board as the timing model sees it. */
typedef struct tm_region {
    uint32_t origin;
    uint32_t last;          /* inclusive end address */
    uint32_t kind;          /* TM_KIND_* */
    uint32_t wait_states;
    uint32_t access_shift;  /* log2 bytes per access of the region's port */
    uint32_t cacheable;     /* cached by the L1 caches (when the firmware enables them) */
    uint64_t host;          /* host address backing `origin` (0: read through Unicorn) */
} tm_region;

/* Replacement policies of a cache. */
#define TM_POLICY_LRU 0u
#define TM_POLICY_FIFO 1u
#define TM_POLICY_RANDOM 2u

/* A set-associative cache whose lines hold a mask of the access units filled so far. */
typedef struct tm_cache {
    uint32_t line_shift;  /* 0 = no cache */
    uint32_t set_mask;
    uint32_t ways;
    uint32_t unit_shift;  /* log2 bytes per fill unit (the memory's access width) */
    uint32_t policy;      /* TM_POLICY_*: LRU stamps on every hit, FIFO on fills only */
    uint32_t rng;         /* xorshift state of TM_POLICY_RANDOM (fixed seed: reproducible) */
    uint32_t *tags;       /* [sets * ways]: line number + 1, 0 = empty */
    uint32_t *units;      /* [sets * ways]: bit u = unit u of the line is present */
    uint64_t *stamp;      /* [sets * ways]: LRU time */
    uint64_t tick;
    uint64_t epoch;       /* incremented by every allocation (a line may have left) */
    uint32_t hint[64];    /* way that last held a line with these low line bits */
} tm_cache;

/* Timing configuration written by Python before the run (all cycle values fixed point). */
typedef struct tm_timing_config {
    uint32_t enabled;
    uint32_t n_regions;
    tm_region regions[TM_MAX_REGIONS];
    uint32_t prefetch;          /* flash accelerator prefetch buffer */
    uint32_t l1_fill;           /* extra cycles of an L1 line fill beyond the wait states */
    uint32_t unified;           /* flash data reads go through the accelerator's I-cache */
    uint32_t unaligned_rule;    /* TM_UNALIGNED_* */
    uint32_t data_memo;         /* 1: use the data-side memo (tm_memo_*; 0 only to test it) */
    uint32_t pad;
    uint64_t unaligned_cycles;  /* fixed point: cycles per extra bus transaction */
    uint32_t accel_icache[4];   /* line bytes, sets, ways (0 = none), TM_POLICY_* */
    uint32_t accel_dcache[4];
    uint32_t l1_icache[4];
    uint32_t l1_dcache[4];
    uint64_t ifetch_weight;     /* fixed point multipliers of the raw stalls (calibration) */
    uint64_t data_weight;
} tm_timing_config;

#define TM_MEMO_UNITS 8u
#define TM_PREDICT_ENTRIES 4096u

typedef struct tm_entry {
    uint32_t addr;
    uint32_t size;
    int32_t layer;
    uint32_t used;
    struct tm_cost_entry *desc;
    uint64_t s[TM_S_COLUMNS];
} tm_entry;

typedef struct tm_cost_entry {
    uint32_t addr;
    uint32_t size;
    uint32_t used;
    uint32_t end_kind;
    uint32_t predictor;    /* TM_END_PREDICTED: TM_PREDICT_* */
    uint32_t pad;
    uint64_t base;
    uint64_t taken;
    uint64_t not_taken;
    int64_t seam_pipe;
    int64_t seam_pair;
    uint32_t head;
    uint32_t tail;
    uint32_t tail_written;
    int32_t *ops;
    uint32_t n_ops;
    uint32_t regs_mask;
    /* instruction-side memo: the block's code units all hit in `hit_cache` when its
     * allocation epoch was `hit_epoch`; while nothing was allocated since, they still do */
    uint64_t hit_epoch;
    const void *hit_cache;
    uint32_t hit_slots[TM_MEMO_UNITS];  /* cache slot (set * ways + way) of each unit */
    struct tm_data_memo *data_memo;     /* data-side memo (NULL: program not affine) */
} tm_cost_entry;

/* Field order: all 8-byte members first so the ctypes mirror has no padding surprises. */
typedef struct tm_ctx {
    /* configuration, written by Python before emulation */
    uint64_t prof_begin_addr;   /* tm_prof_begin entry, thumb bit cleared, or TM_NO_ADDR */
    uint64_t prof_end_addr;
    uint64_t evt_begin_addr;    /* optional second pair (auto-increment layer ids) */
    uint64_t evt_end_addr;
    uint64_t budget_insns;      /* stop when executed_bytes / 2 > budget_insns; 0 = none */
    tm_reg_read_fn reg_read;
    tm_emu_stop_fn emu_stop;
    tm_cost_fn cost_fn;         /* NULL: every block costs 0 */
    void *cost_user;
    uint32_t *evt_tags;         /* optional: tag pointer (r1) per event id */
    uint64_t evt_tags_cap;
    tm_mem_read_fn mem_read;    /* reads SCB CCR at layer switches (M7 cache enables) */
    tm_reg_read_batch_fn reg_read_batch; /* the address programs' registers, one call */
    /* running state, read by Python (also during emulation: the cycle counter) */
    uint64_t executed_bytes;
    uint64_t blocks_executed;
    uint64_t cycles;            /* fixed point, TM_CYCLE_FRAC_BITS */
    /* block cost cache keyed by (addr, size), owned by C */
    tm_cost_entry *costs;
    uint64_t cost_capacity;
    uint64_t cost_used;
    /* hash table, owned by C */
    tm_entry *table;
    uint64_t capacity;          /* power of two */
    uint64_t used;
    tm_entry *last;             /* the previous block's entry: one-entry cache and branch outcome */
    /* timing state, owned by C */
    uint64_t stream_ready;      /* fixed point: when the prefetched flash unit is ready */
    uint64_t flash_free;        /* fixed point: when the flash port is free */
    /* cycle alarm (fixed point; 0 = none): the first block starting at or after it stops
     * emulation uncounted, so Python can deliver an interrupt and resume there */
    uint64_t alarm_cycles;
    uint64_t align_faults;      /* accesses that fault on the core when unaligned (all rows) */
    uint32_t stream_unit;       /* unit number the prefetch stream holds next */
    uint32_t stream_valid;
    uint32_t l1_enabled;        /* CCR.IC | CCR.DC as last read */
    uint32_t code_region;       /* index of the region the last block was fetched from */
    int32_t current_layer;
    uint32_t evt_counter;
    uint32_t evt_wrap;
    uint32_t flags;
    uint32_t align_fault_pc;    /* address of the first such instruction (0: none yet) */
    uint32_t pad;
    tm_timing_config timing;
    tm_cache accel_icache;
    tm_cache accel_dcache;
    tm_cache l1_icache;
    tm_cache l1_dcache;
    /* branch predictor state of TM_END_PREDICTED ends, direct-mapped by the branch's end
     * address (blocks ending at the same branch share it; distant branches may alias, as
     * in a real branch history table): 0 = never seen, else TM_PREDICT_* state + 1 */
    uint8_t predict[TM_PREDICT_ENTRIES];
} tm_ctx;

static inline uint64_t tm_hash(uint32_t addr, uint32_t size, int32_t layer) {
    uint64_t h = ((uint64_t)addr << 32) ^ ((uint64_t)size << 20) ^ (uint32_t)layer;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static tm_entry *tm_slot(tm_entry *table, uint64_t capacity, uint32_t addr, uint32_t size,
                         int32_t layer) {
    uint64_t mask = capacity - 1;
    uint64_t i = tm_hash(addr, size, layer) & mask;
    for (;;) {
        tm_entry *e = &table[i];
        if (!e->used || (e->addr == addr && e->size == size && e->layer == layer)) {
            return e;
        }
        i = (i + 1) & mask;
    }
}

static int tm_grow(tm_ctx *ctx) {
    uint64_t new_capacity = ctx->capacity * 2;
    tm_entry *fresh = calloc(new_capacity, sizeof(tm_entry));
    if (!fresh) {
        return -1;
    }
    tm_entry *last_moved = NULL;
    for (uint64_t i = 0; i < ctx->capacity; i++) {
        tm_entry *old = &ctx->table[i];
        if (old->used) {
            tm_entry *slot = tm_slot(fresh, new_capacity, old->addr, old->size, old->layer);
            *slot = *old;
            if (old == ctx->last) {
                last_moved = slot;
            }
        }
    }
    free(ctx->table);
    ctx->table = fresh;
    ctx->capacity = new_capacity;
    ctx->last = last_moved;
    return 0;
}

/* -- the block cost table ------------------------------------------------------------ */

static tm_cost_entry *tm_cost_slot(tm_cost_entry *table, uint64_t capacity, uint32_t addr,
                                   uint32_t size) {
    uint64_t mask = capacity - 1;
    uint64_t i = tm_hash(addr, size, 0) & mask;
    for (;;) {
        tm_cost_entry *e = &table[i];
        if (!e->used || (e->addr == addr && e->size == size)) {
            return e;
        }
        i = (i + 1) & mask;
    }
}

/* Growing moves cost entries: block entries point at them, so they are re-pointed. */
static int tm_cost_grow(tm_ctx *ctx) {
    uint64_t new_capacity = ctx->cost_capacity * 2;
    tm_cost_entry *fresh = calloc(new_capacity, sizeof(tm_cost_entry));
    if (!fresh) {
        return -1;
    }
    for (uint64_t i = 0; i < ctx->cost_capacity; i++) {
        tm_cost_entry *old = &ctx->costs[i];
        if (old->used) {
            *tm_cost_slot(fresh, new_capacity, old->addr, old->size) = *old;
        }
    }
    for (uint64_t i = 0; i < ctx->capacity; i++) {
        tm_entry *e = &ctx->table[i];
        if (e->used && e->desc) {
            e->desc = tm_cost_slot(fresh, new_capacity, e->desc->addr, e->desc->size);
        }
    }
    free(ctx->costs);
    ctx->costs = fresh;
    ctx->cost_capacity = new_capacity;
    return 0;
}

static void tm_free_costs(tm_ctx *ctx) {
    for (uint64_t i = 0; i < ctx->cost_capacity; i++) {
        free(ctx->costs[i].ops);
        free(ctx->costs[i].data_memo);
    }
    free(ctx->costs);
    ctx->costs = NULL;
}

struct tm_data_memo;
static struct tm_data_memo *tm_memo_build(const int32_t *ops, uint32_t n_ops, uint32_t regs_mask);

/* The descriptor of (addr, size): cached, else asked once from cost_fn.
 * Returns NULL and sets a flag on failure (out of memory or callback error). */
static tm_cost_entry *tm_block_cost(tm_ctx *ctx, uint32_t addr, uint32_t size) {
    static tm_cost_entry zero = {0};
    if (!ctx->cost_fn) {
        return &zero;
    }
    tm_cost_entry *c = tm_cost_slot(ctx->costs, ctx->cost_capacity, addr, size);
    if (c->used) {
        return c;
    }
    tm_block_desc desc;
    memset(&desc, 0, sizeof desc);
    ctx->cost_fn(ctx->cost_user, addr, size, &desc);
    if (desc.error) {
        ctx->flags |= TM_FLAG_COST;
        return NULL;
    }
    int32_t *ops = NULL;
    if (desc.n_ops) {
        size_t bytes = (size_t)desc.n_ops * TM_AP_OP_WORDS * sizeof(int32_t);
        ops = malloc(bytes);
        if (!ops) {
            ctx->flags |= TM_FLAG_OOM;
            return NULL;
        }
        memcpy(ops, desc.ops, bytes);
    }
    if ((ctx->cost_used + 1) * 10 > ctx->cost_capacity * 7) {
        if (tm_cost_grow(ctx) != 0) {
            free(ops);
            ctx->flags |= TM_FLAG_OOM;
            return NULL;
        }
        c = tm_cost_slot(ctx->costs, ctx->cost_capacity, addr, size);
    }
    c->addr = addr;
    c->size = size;
    c->used = 1;
    c->end_kind = desc.end_kind;
    c->predictor = desc.predictor;
    c->base = desc.base;
    c->taken = desc.taken;
    c->not_taken = desc.not_taken;
    c->ops = ops;
    c->n_ops = desc.n_ops;
    c->regs_mask = desc.regs_mask;
    c->seam_pipe = desc.seam_pipe;
    c->seam_pair = desc.seam_pair;
    c->head = desc.head;
    c->tail = desc.tail;
    c->tail_written = desc.tail_written;
    c->data_memo = ops ? tm_memo_build(ops, desc.n_ops, desc.regs_mask) : NULL;
    ctx->cost_used++;
    return c;
}

/* -- caches --------------------------------------------------------------------------- */

static uint32_t tm_log2(uint32_t v) {
    uint32_t s = 0;
    while ((1u << s) < v) {
        s++;
    }
    return s;
}

/* geometry = {line bytes, sets, ways, policy}; unit = bytes per fill access. */
static int tm_cache_init(tm_cache *c, const uint32_t geometry[4], uint32_t unit_shift) {
    free(c->tags);
    free(c->units);
    free(c->stamp);
    memset(c, 0, sizeof *c);
    if (!geometry[0] || !geometry[1] || !geometry[2]) {
        return 0;
    }
    uint32_t n = geometry[1] * geometry[2];
    c->tags = calloc(n, sizeof(uint32_t));
    c->units = calloc(n, sizeof(uint32_t));
    c->stamp = calloc(n, sizeof(uint64_t));
    if (!c->tags || !c->units || !c->stamp) {
        return -1;
    }
    c->line_shift = tm_log2(geometry[0]);
    c->set_mask = geometry[1] - 1;
    c->ways = geometry[2];
    c->unit_shift = unit_shift < c->line_shift ? unit_shift : c->line_shift;
    c->policy = geometry[3];
    c->rng = 0x9E3779B9u;
    return 0;
}

static uint32_t tm_victim(tm_cache *c, const uint32_t *tags, const uint64_t *stamp) {
    uint32_t victim = 0;
    for (uint32_t w = 0; w < c->ways; w++) {
        if (!tags[w]) {
            return w;  /* an empty way first, whatever the policy */
        }
        if (stamp[w] < stamp[victim]) {
            victim = w;
        }
    }
    if (c->policy == TM_POLICY_RANDOM) {
        c->rng ^= c->rng << 13;
        c->rng ^= c->rng >> 17;
        c->rng ^= c->rng << 5;
        victim = c->rng % c->ways;
    }
    return victim;
}

static void tm_cache_free(tm_cache *c) {
    free(c->tags);
    free(c->units);
    free(c->stamp);
    memset(c, 0, sizeof *c);
}

/* Look up the unit holding *address*; on a miss allocate (LRU victim) and mark it present.
 * whole_line: a miss fills every unit of the line (L1 line fills); else only this unit
 * (the ART fills a line as its units are fetched). Returns 1 on a hit. */
static int tm_cache_access(tm_cache *c, uint32_t address, int whole_line, uint32_t *slot) {
    uint32_t line = address >> c->line_shift;
    uint32_t unit_bit = 1u << ((address >> c->unit_shift) & ((1u << (c->line_shift - c->unit_shift)) - 1));
    size_t set = (size_t)(line & c->set_mask) * c->ways;
    uint32_t *tags = c->tags + set;
    uint32_t *units = c->units + set;
    uint64_t *stamp = c->stamp + set;
    uint32_t *hint = &c->hint[line & 63u];
    uint32_t way = *hint < c->ways && tags[*hint] == line + 1 ? *hint : c->ways;
    c->tick++;
    if (way == c->ways) {
        for (uint32_t w = 0; w < c->ways; w++) {
            if (tags[w] == line + 1) {
                way = w;
                break;
            }
        }
    }
    if (way < c->ways) {
        *hint = way;
        if (c->policy == TM_POLICY_LRU) {
            stamp[way] = c->tick;
        }
        *slot = (uint32_t)set + way;
        if (units[way] & unit_bit) {
            return 1;
        }
        units[way] |= unit_bit;
        c->epoch++;
        return 0;
    }
    uint32_t victim = tm_victim(c, tags, stamp);
    tags[victim] = line + 1;
    units[victim] = whole_line ? 0xFFFFFFFFu : unit_bit;
    stamp[victim] = c->tick;
    *hint = victim;
    *slot = (uint32_t)set + victim;
    c->epoch++;
    return 0;
}

/* -- the timing model ----------------------------------------------------------------- */

static inline const tm_region *tm_region_of(const tm_ctx *ctx, uint32_t address, uint32_t *index) {
    const tm_timing_config *t = &ctx->timing;
    for (uint32_t i = 0; i < t->n_regions; i++) {
        const tm_region *r = &t->regions[i];
        if (address >= r->origin && address <= r->last) {
            if (index) {
                *index = i;
            }
            return r;
        }
    }
    return NULL;
}

/* Memory access units one line fill of cache c reads (units of 2^unit_shift bytes). */
static inline uint32_t tm_line_units(const tm_cache *c, uint32_t unit_shift) {
    return c->line_shift > unit_shift ? 1u << (c->line_shift - unit_shift) : 1u;
}

/* Stall cycles (fixed point) of fetching the code units of a block that starts at `now`.
 * The core needs unit k at now + k * per_unit (+ stalls so far); a unit comes from the
 * instruction cache (no stall), from the prefetch stream (ready at stream_ready), or from
 * a new flash access (wait_states cycles beyond the one-cycle fetch the base CPI counts).
 * After a flash unit is delivered the prefetcher starts reading the next one. */
static uint64_t tm_fetch(tm_ctx *ctx, tm_entry *e, uint32_t addr, uint32_t size, uint64_t now,
                         uint64_t base) {
    tm_cost_entry *memo = e->desc;
    const tm_timing_config *t = &ctx->timing;
    const tm_region *r = NULL;
    if (ctx->code_region < t->n_regions) {
        r = &t->regions[ctx->code_region];
        if (addr < r->origin || addr > r->last) {
            r = NULL;
        }
    }
    if (!r) {
        r = tm_region_of(ctx, addr, &ctx->code_region);
    }
    if (!r) {
        return 0;
    }
    tm_cache *cache = NULL;
    int l1 = 0;
    if (r->cacheable && (ctx->l1_enabled & TM_CCR_IC) && ctx->l1_icache.line_shift) {
        cache = &ctx->l1_icache;
        l1 = 1;
    } else if (r->kind == TM_KIND_FLASH && ctx->accel_icache.line_shift) {
        cache = &ctx->accel_icache;
    }
    uint32_t shift = r->access_shift;
    uint32_t first = addr >> shift, last = (addr + size - 1) >> shift;
    uint32_t n_units = last - first + 1;
    int flash = r->kind == TM_KIND_FLASH;
    if (r->wait_states == 0 && !(l1 && t->l1_fill)) {
        /* no stall to simulate: every unit is read from the array */
        e->s[TM_S_FLASH_READS] += flash ? n_units : 0;
        return 0;
    }
    if (cache && memo->hit_cache == cache && memo->hit_epoch == cache->epoch) {
        /* nothing was allocated since the block last hit throughout: it hits again; the
         * LRU stamps advance exactly as the lookups would advance them */
        if (cache->policy == TM_POLICY_LRU) {
            for (uint32_t k = 0; k < n_units; k++) {
                cache->stamp[memo->hit_slots[k]] = ++cache->tick;
            }
        } else {
            cache->tick += n_units;
        }
        e->s[TM_S_IC_HIT] += n_units;
        return 0;
    }
    uint64_t per_unit = base / (last - first + 1);
    uint64_t access = (uint64_t)r->wait_states * TM_ONE;
    uint64_t stall = 0;
    uint32_t misses = 0;
    for (uint32_t u = first; u <= last; u++) {
        if (cache) {
            uint32_t slot = 0;
            if (tm_cache_access(cache, u << shift, l1, &slot)) {
                if (u - first < TM_MEMO_UNITS) {
                    memo->hit_slots[u - first] = slot;
                }
                e->s[TM_S_IC_HIT]++;
                now += per_unit;
                continue;
            }
            e->s[TM_S_IC_MISS]++;
            misses++;
        }
        uint64_t ready;
        if (l1) {
            ready = now + access + (uint64_t)t->l1_fill * TM_ONE;
            e->s[TM_S_FLASH_READS] += flash ? tm_line_units(cache, shift) : 0;
        } else if (ctx->stream_valid && u == ctx->stream_unit) {
            ready = ctx->stream_ready;  /* read when the prefetch was issued */
        } else {
            uint64_t start = ctx->flash_free > now ? ctx->flash_free : now;
            ready = start + access;
            e->s[TM_S_FLASH_READS] += flash;
        }
        if (ready > now) {
            stall += ready - now;
            now = ready;
        }
        if (!l1 && t->prefetch) {
            /* the prefetch reads the next unit now, whether or not the core takes it */
            e->s[TM_S_FLASH_READS] += flash;
            ctx->stream_unit = u + 1;
            ctx->stream_ready = now + access + TM_ONE;
            ctx->stream_valid = 1;
            ctx->flash_free = ctx->stream_ready;
        } else {
            ctx->stream_valid = 0;
            ctx->flash_free = now;
        }
        now += per_unit;
    }
    if (cache && !misses && n_units <= TM_MEMO_UNITS) {
        memo->hit_cache = cache;
        memo->hit_epoch = cache->epoch;
    }
    return stall;
}

typedef struct tm_data_run {
    tm_ctx *ctx;
    void *uc;
    tm_entry *e;
    uint64_t now;     /* fixed point: when the block's first instruction issues */
    uint64_t stall;   /* data stall of this execution so far */
    uint64_t base;    /* the block's core cycles and size: an access at byte offset k */
    uint32_t size;    /* issues about base * k / size cycles into the block */
    uint32_t offset;  /* byte offset of the access being priced */
    uint32_t extra;   /* extra bus transactions of this execution's unaligned accesses */
} tm_data_run;

/* Guest memory for the address programs' LOAD ops (pointers the block loads itself):
 * memory regions only, never a peripheral (reading one has side effects). */
static int tm_read_guest(void *user, uint32_t address, uint32_t bytes, uint32_t *value) {
    tm_data_run *run = (tm_data_run *)user;
    const tm_region *r = tm_region_of(run->ctx, address, NULL);
    if (!r || address + bytes - 1 > r->last) {
        return 0;
    }
    *value = 0;
    if (r->host) {
        memcpy(value, (const uint8_t *)(uintptr_t)r->host + (address - r->origin), bytes);
        return 1;
    }
    return run->ctx->mem_read && run->ctx->mem_read(run->uc, address, value, bytes) == 0;
}

/* Stall of one load of `bytes` at `address` from region r (fixed point). */
static uint64_t tm_load_stall(tm_data_run *run, const tm_region *r, uint32_t address,
                              uint32_t bytes) {
    tm_ctx *ctx = run->ctx;
    tm_entry *e = run->e;
    uint64_t access = (uint64_t)r->wait_states * TM_ONE;
    uint64_t stall = 0;
    if (r->cacheable && (ctx->l1_enabled & TM_CCR_DC) && ctx->l1_dcache.line_shift) {
        tm_cache *c = &ctx->l1_dcache;
        uint32_t line_bytes = 1u << c->line_shift;
        uint32_t fill = ((uint64_t)r->wait_states + 1) * ((line_bytes >> r->access_shift) ?
                        (line_bytes >> r->access_shift) : 1) - 1 + ctx->timing.l1_fill;
        for (uint32_t a = address >> c->line_shift; a <= (address + bytes - 1) >> c->line_shift; a++) {
            uint32_t slot;
            if (tm_cache_access(c, a << c->line_shift, 1, &slot)) {
                e->s[TM_S_DC_HIT]++;
            } else {
                e->s[TM_S_DC_MISS]++;
                e->s[TM_S_FLASH_READS] += r->kind == TM_KIND_FLASH ? tm_line_units(c, r->access_shift) : 0;
                stall += (uint64_t)fill * TM_ONE;
            }
        }
        return stall;
    }
    uint32_t shift = r->access_shift;
    if (r->wait_states == 0) {
        /* nothing to simulate: every unit is read from the array */
        if (r->kind == TM_KIND_FLASH) {
            e->s[TM_S_FLASH_READS] += ((address + bytes - 1) >> shift) - (address >> shift) + 1;
        }
        return 0;
    }
    tm_cache *c = NULL;
    if (r->kind == TM_KIND_FLASH) {
        if (ctx->accel_dcache.line_shift) {
            c = &ctx->accel_dcache;
        } else if (ctx->timing.unified && ctx->accel_icache.line_shift) {
            c = &ctx->accel_icache;
        }
    }
    for (uint32_t u = address >> shift; u <= (address + bytes - 1) >> shift; u++) {
        if (c) {
            uint32_t slot;
            if (tm_cache_access(c, u << shift, 0, &slot)) {
                e->s[TM_S_DC_HIT]++;
                continue;
            }
            e->s[TM_S_DC_MISS]++;
        }
        e->s[TM_S_FLASH_READS] += r->kind == TM_KIND_FLASH;
        /* The flash has one read port: a data access waits for the read in flight (an
         * instruction prefetch or another data read; a started read is not aborted), then
         * takes the port for wait_states + 1 cycles.  The prefetched unit is in the buffer
         * by then; the next prefetch starts when the core takes that unit (tm_fetch). */
        uint64_t now = run->now + run->base * run->offset / run->size + run->stall + stall;
        uint64_t start = ctx->flash_free > now ? ctx->flash_free : now;
        uint64_t done = start + access;
        stall += done - now;
        ctx->flash_free = done + TM_ONE;
    }
    return stall;
}

/* Extra bus transactions of a single load/store of `unit` (2 or 4) bytes at an address
 * misaligned by `low` (address & 3), as the core splits it:
 *  - Cortex-M3/M4 TRM 3.3.2 (load/store timings; the M33 TRM says only "two or more
 *    aligned AHB transactions", so the same split): a halfword at an odd address is two
 *    bytes (+1), a word at 2 mod 4 two halfwords (+1), at 1 or 3 mod 4 byte + halfword +
 *    byte (+2);
 *  - Cortex-M7 (TRM, load/store unit): any unaligned access is two aligned accesses (+1). */
static inline uint32_t tm_unaligned_extra(uint32_t rule, uint32_t unit, uint32_t low) {
    if (rule == TM_UNALIGNED_PAIR || unit == 2u) {
        return 1u;
    }
    return (low & 1u) ? 2u : 1u;
}

/* An access whose address is not a multiple of its alignment unit min(bytes, 4): counts
 * the extra transactions of a split one, or records a fault (an instruction that must be
 * aligned, or any access on ARMv6-M), which real silicon takes instead of the access. */
static void tm_unaligned(tm_data_run *run, uint32_t bucket, uint32_t address, uint32_t bytes,
                         uint32_t flags) {
    tm_ctx *ctx = run->ctx;
    uint32_t unit = bytes < 4u ? bytes : 4u;
    if (unit < 2u || !(address & (unit - 1u))) {
        return;
    }
    uint32_t rule = ctx->timing.unaligned_rule;
    if ((flags & TM_AP_STRICT) || rule == TM_UNALIGNED_FAULT) {
        run->e->s[TM_S_ALIGN_FAULTS]++;
        if (!ctx->align_faults++) {
            ctx->align_fault_pc = run->e->addr + (flags >> 16);
        }
        return;
    }
    uint32_t extra = tm_unaligned_extra(rule, unit, address & 3u);
    run->e->s[TM_S_UNALIGNED + bucket] += extra;
    run->extra += extra;
}

static void tm_on_access(void *user, uint32_t address, uint32_t bytes, uint32_t flags) {
    tm_data_run *run = (tm_data_run *)user;
    tm_entry *e = run->e;
    uint32_t bucket = TM_BUCKET_UNRESOLVED;
    const tm_region *r = NULL;
    if (flags & TM_AP_RESOLVED) {
        r = tm_region_of(run->ctx, address, NULL);
        bucket = r ? r->kind : TM_KIND_PERIPH;
        if (address & 3u) {
            tm_unaligned(run, bucket, address, bytes, flags);
        }
    }
    if (flags & TM_AP_STORE) {
        e->s[TM_S_STORES + bucket]++;
        return;
    }
    e->s[TM_S_LOADS + bucket]++;
    e->s[TM_S_LOAD_BYTES + bucket] += bytes;
    run->offset = flags >> 16;
    if (r && bytes) {
        run->stall += tm_load_stall(run, r, address, bytes);
    }
}

/* -- data-side memo ------------------------------------------------------------------
 *
 * Why: evaluating the address program and pricing every access is a third of the hook's
 * time, yet most accesses go to zero-wait, uncached SRAM ("free" regions: no stall, no
 * cache state, no flash reads), where only the counts per memory kind and the unaligned
 * transactions depend on the addresses.  For a block whose program is affine -- every
 * access is an entry register plus a constant (ADDI chains), an absolute address or
 * unresolved; no index register, LOAD or ALU -- the memo keeps the accesses as (root
 * register, offset) and records, per root whose whole span of accesses fell in one free
 * region, that region and the register's low address bits that decide alignment.  A
 * later execution whose free roots span the same regions (bounds check of the register
 * plus the lowest and highest offset) with the same low bits, under the same L1 enables,
 * has exactly the same regions, buckets and alignments for those accesses: their
 * recorded counts are added without looking at them.  The other accesses (roots in
 * flash or other timed regions, absolute literal-pool addresses in flash) are priced in
 * full, in program order, from register + offset, which is exact because the skipped
 * ones add no stall and touch no timing state.  A mismatch re-records; an access that
 * faults falls back to the full evaluation (which reports it). */

#define TM_MEMO_ABS (-1)
#define TM_MEMO_UNRESOLVED (-2)
#define TM_MEMO_REGS 15u
/* Failed executions in a row after which a block's memo stops being tried (speed only:
 * the full evaluation is always exact). */
#define TM_MEMO_GIVE_UP 16u

typedef struct tm_memo_access {
    int32_t root;     /* entry register, TM_MEMO_ABS or TM_MEMO_UNRESOLVED */
    uint32_t offset;  /* added to the register (TM_MEMO_ABS: the address) */
    uint32_t bytes;
    uint32_t flags;   /* as the access callback gets them, address resolved */
} tm_memo_access;

/* The recorded state of one free root: the register values that keep its whole span of
 * accesses in the recorded region, and its low bits that decide alignment. */
typedef struct tm_memo_check {
    uint32_t vmin, vmax;
    uint8_t reg, align, low, pad;
} tm_memo_check;

typedef struct tm_data_memo {
    /* hot: what every execution reads (the recorded state is valid while `valid`) */
    uint32_t valid;
    uint32_t l1_enabled;            /* the L1 enables it was recorded under */
    uint32_t misses;                /* executions in a row the memo could not serve */
    uint32_t extra;                 /* unaligned extra transactions of one execution */
    uint32_t n_free;                /* roots recorded in a free region: checked, skipped */
    uint32_t n_delta;
    uint32_t n_replay;
    uint32_t n_access;
    tm_memo_check check[TM_MEMO_REGS];
    uint16_t delta_col[4 * TM_NBUCKETS];
    uint32_t delta_val[4 * TM_NBUCKETS];
    tm_memo_access *replay;         /* the accesses priced in full, in program order */
    /* cold: the program's shape */
    tm_memo_access *access;         /* every access (n_access) */
    uint32_t roots;                 /* entry registers some access is based on */
    uint8_t align[TM_MEMO_REGS];    /* low address bits per root that decide alignment */
    int64_t lo[TM_MEMO_REGS];       /* lowest and highest byte offset accessed per root */
    int64_t hi[TM_MEMO_REGS];
} tm_data_memo;

/* The memo of an affine program, or NULL (see above). */
static tm_data_memo *tm_memo_build(const int32_t *ops, uint32_t n_ops, uint32_t regs_mask) {
    int32_t root[16];
    int64_t off[16];
    uint32_t n_access = 0;
    for (uint32_t i = 0; i < n_ops; i++) {
        int32_t code = ops[i * TM_AP_OP_WORDS];
        if (code == TM_AP_OP_ACCESS || code == TM_AP_OP_ACCESS_ABS || code == TM_AP_OP_UNKNOWN) {
            n_access++;
        }
    }
    /* one allocation: the header, the replay list right after it, then the accesses */
    tm_data_memo *m = calloc(1, sizeof *m + 2 * (size_t)n_access * sizeof(tm_memo_access));
    if (!m) {
        return NULL;  /* no memo: the full evaluation is always exact */
    }
    m->replay = (tm_memo_access *)(m + 1);
    m->access = m->replay + n_access;
    for (uint32_t r = 0; r < 16; r++) {
        root[r] = r < TM_MEMO_REGS && (regs_mask & (1u << r)) ? (int32_t)r : TM_MEMO_UNRESOLVED;
        off[r] = 0;
        if (r < TM_MEMO_REGS) {
            m->lo[r] = INT64_MAX;
            m->hi[r] = INT64_MIN;
        }
    }
    for (uint32_t i = 0; i < n_ops; i++) {
        const int32_t *op = ops + i * TM_AP_OP_WORDS;
        uint32_t a = (uint32_t)op[1] & 15u, b = (uint32_t)op[2] & 15u, f = (uint32_t)op[5];
        tm_memo_access *x = &m->access[m->n_access];
        switch (op[0]) {
        case TM_AP_OP_ACCESS:
            if (op[2] >= 0) {
                free(m);
                return NULL;  /* an index register: no single span per root */
            }
            x->root = root[a];  /* TM_MEMO_ABS: off[a] is the base's value */
            x->offset = (uint32_t)(off[a] + op[4]);
            if (x->root >= 0) {
                int64_t lo = off[a] + op[4];
                int64_t bytes = (f & TM_AP_F_BYTES) ? (f & TM_AP_F_BYTES) : 1;
                m->roots |= 1u << x->root;
                m->lo[x->root] = lo < m->lo[x->root] ? lo : m->lo[x->root];
                m->hi[x->root] = lo + bytes - 1 > m->hi[x->root] ? lo + bytes - 1 : m->hi[x->root];
                /* (address & (unit - 1)) decides the alignment of a unit-byte access */
                m->align[x->root] |= (uint8_t)((bytes >= 4 ? 4 : bytes) - 1);
            }
            break;
        case TM_AP_OP_ACCESS_ABS:
            x->root = TM_MEMO_ABS;
            x->offset = (uint32_t)op[4];
            break;
        case TM_AP_OP_UNKNOWN:
            x->root = TM_MEMO_UNRESOLVED;
            x->offset = 0;
            break;
        case TM_AP_OP_ADDI:
            root[a] = root[b];
            off[a] = off[b] + op[4];
            continue;
        case TM_AP_OP_CONST:
            root[a] = TM_MEMO_ABS;
            off[a] = (uint32_t)op[4];
            continue;
        case TM_AP_OP_KILL:
            root[a] = TM_MEMO_UNRESOLVED;
            continue;
        default:
            free(m);
            return NULL;  /* LOAD, ALU, ADDR: addresses are no register plus constant */
        }
        x->bytes = f & TM_AP_F_BYTES;
        x->flags = tm_ap_flags(f, x->root != TM_MEMO_UNRESOLVED) | (f & TM_AP_F_OFFSET);
        m->n_access++;
    }
    return m;
}

/* A region whose accesses cost nothing and change no timing state. */
static inline int tm_region_free(const tm_ctx *ctx, const tm_region *r) {
    return r->kind != TM_KIND_FLASH && r->wait_states == 0 &&
           !(r->cacheable && (ctx->l1_enabled & TM_CCR_DC) && ctx->l1_dcache.line_shift);
}

/* Whether the registers at entry put every free root's span where the recorded state has it. */
static inline int tm_memo_matches(const tm_ctx *ctx, const tm_data_memo *m, const uint32_t regs[16]) {
    if (!m->valid || m->l1_enabled != ctx->l1_enabled) {
        return 0;
    }
    for (uint32_t k = 0; k < m->n_free; k++) {
        const tm_memo_check *x = &m->check[k];
        uint32_t v = regs[x->reg];
        if ((v & x->align) != x->low || v < x->vmin || v > x->vmax) {
            return 0;
        }
    }
    return 1;
}

/* Record the state of this execution's registers (which roots are free, their spans and
 * low bits, the counts of their accesses); 0 if the memo cannot serve it (an access of a
 * free root that faults: the full evaluation then reports it). */
static int tm_memo_record(const tm_ctx *ctx, tm_data_memo *m, const uint32_t regs[16]) {
    uint32_t counts[4][TM_NBUCKETS];
    uint32_t kind[TM_MEMO_REGS];  /* memory kind of each free root's region */
    uint32_t free_roots = 0;
    memset(counts, 0, sizeof counts);
    m->valid = 0;
    m->n_free = 0;
    for (uint32_t bits = m->roots; bits; bits &= bits - 1) {
        uint32_t r = (uint32_t)__builtin_ctz(bits);
        int64_t first = (int64_t)regs[r] + m->lo[r], last = (int64_t)regs[r] + m->hi[r];
        if (first < 0 || last > (int64_t)UINT32_MAX) {
            continue;  /* wraps: its accesses are priced in full */
        }
        const tm_region *region = tm_region_of(ctx, (uint32_t)first, NULL);
        if (region && last <= region->last && tm_region_free(ctx, region)) {
            /* regs[r] + lo >= origin and regs[r] + hi <= last, in 32 bits */
            int64_t vmin = (int64_t)region->origin - m->lo[r];
            int64_t vmax = (int64_t)region->last - m->hi[r];
            tm_memo_check *x = &m->check[m->n_free++];
            free_roots |= 1u << r;
            kind[r] = region->kind;
            x->reg = (uint8_t)r;
            x->vmin = (uint32_t)(vmin > 0 ? vmin : 0);
            x->vmax = (uint32_t)(vmax < (int64_t)UINT32_MAX ? vmax : (int64_t)UINT32_MAX);
            x->align = m->align[r];
            x->low = (uint8_t)(regs[r] & x->align);
        }
    }
    uint32_t extra = 0;
    m->n_replay = 0;
    for (uint32_t i = 0; i < m->n_access; i++) {
        const tm_memo_access *x = &m->access[i];
        uint32_t bucket = TM_BUCKET_UNRESOLVED;
        if (x->root != TM_MEMO_UNRESOLVED) {
            uint32_t address = x->offset;
            if (x->root == TM_MEMO_ABS) {
                const tm_region *region = tm_region_of(ctx, address, NULL);
                if (region && !tm_region_free(ctx, region)) {
                    m->replay[m->n_replay++] = *x;  /* priced in full at every execution */
                    continue;
                }
                bucket = region ? region->kind : TM_KIND_PERIPH;
            } else if (free_roots & (1u << x->root)) {
                address += regs[x->root];
                bucket = kind[x->root];
            } else {
                m->replay[m->n_replay++] = *x;  /* a root outside the free regions */
                continue;
            }
            uint32_t unit = x->bytes < 4u ? x->bytes : 4u;
            if (unit >= 2u && (address & (unit - 1u))) {
                if ((x->flags & TM_AP_STRICT) || ctx->timing.unaligned_rule == TM_UNALIGNED_FAULT) {
                    return 0;
                }
                uint32_t n = tm_unaligned_extra(ctx->timing.unaligned_rule, unit, address & 3u);
                counts[3][bucket] += n;
                extra += n;
            }
        }
        if (x->flags & TM_AP_STORE) {
            counts[1][bucket]++;
        } else {
            counts[0][bucket]++;
            counts[2][bucket] += x->bytes;
        }
    }
    static const uint16_t base[4] = {TM_S_LOADS, TM_S_STORES, TM_S_LOAD_BYTES, TM_S_UNALIGNED};
    m->n_delta = 0;
    for (uint32_t k = 0; k < 4; k++) {
        for (uint32_t b = 0; b < TM_NBUCKETS; b++) {
            if (counts[k][b]) {
                m->delta_col[m->n_delta] = (uint16_t)(base[k] + b);
                m->delta_val[m->n_delta++] = counts[k][b];
            }
        }
    }
    m->extra = extra;
    m->l1_enabled = ctx->l1_enabled;
    m->valid = 1;
    return 1;
}

/* Serve one execution from the memo (re-recording it if the registers moved); 0: the
 * caller evaluates the program in full. */
static int tm_memo_run(tm_data_run *run, tm_data_memo *m, const uint32_t regs[16]) {
    tm_ctx *ctx = run->ctx;
    if (m->misses >= TM_MEMO_GIVE_UP) {
        return 0;
    }
    if (!tm_memo_matches(ctx, m, regs) && !tm_memo_record(ctx, m, regs)) {
        m->misses++;  /* an access that faults: stop trying after a while */
        return 0;
    }
    m->misses = 0;
    tm_entry *e = run->e;
    for (uint32_t k = 0; k < m->n_delta; k++) {
        e->s[m->delta_col[k]] += m->delta_val[k];
    }
    run->extra += m->extra;
    for (uint32_t k = 0; k < m->n_replay; k++) {
        const tm_memo_access *x = &m->replay[k];
        tm_on_access(run, x->root >= 0 ? regs[x->root] + x->offset : x->offset, x->bytes, x->flags);
    }
    return 1;
}

/* Data-side stall of one execution of a block (fixed point); counts accesses by region
 * and the extra bus transactions of unaligned ones (*extra). */
static uint64_t tm_data(tm_ctx *ctx, void *uc, tm_entry *e, const tm_cost_entry *c, uint64_t now,
                        uint32_t size, uint32_t *extra) {
    uint32_t regs[16] = {0};
    uint8_t valid[16] = {0};
    static const int reg_id[15] = {
        TM_ARM_REG_R0, TM_ARM_REG_R0 + 1, TM_ARM_REG_R0 + 2, TM_ARM_REG_R0 + 3, TM_ARM_REG_R0 + 4,
        TM_ARM_REG_R0 + 5, TM_ARM_REG_R0 + 6, TM_ARM_REG_R0 + 7, TM_ARM_REG_R0 + 8,
        TM_ARM_REG_R0 + 9, TM_ARM_REG_R0 + 10, TM_ARM_REG_R0 + 11, TM_ARM_REG_R0 + 12,
        TM_ARM_REG_SP, TM_ARM_REG_LR};
    int ids[16];
    void *vals[16];
    int n = 0;
    for (uint32_t bits = c->regs_mask & 0x7FFFu; bits; bits &= bits - 1) {
        uint32_t r = (uint32_t)__builtin_ctz(bits);
        ids[n] = reg_id[r];
        vals[n++] = &regs[r];
        valid[r] = 1;
    }
    if (n == 1) {
        ctx->reg_read(uc, ids[0], vals[0]);
    } else if (n > 1) {
        ctx->reg_read_batch(uc, ids, vals, n);
    }
    tm_data_run run = {ctx, uc, e, now, 0, c->base, size ? size : 1, 0, 0};
    if (!(c->data_memo && ctx->timing.data_memo && tm_memo_run(&run, c->data_memo, regs))) {
        tm_ap_eval_mem(c->ops, c->n_ops, regs, valid, tm_on_access, &run, tm_read_guest, &run);
    }
    *extra = run.extra;
    return run.stall;
}

static inline uint64_t tm_weighted(uint64_t raw, uint64_t weight) {
    return (uint64_t)(((__uint128_t)raw * weight) >> TM_CYCLE_FRAC_BITS);
}

/* Core cycles of a block entered straight from `p`: its first load pipelines behind a
 * load (not feeding its address) or an immediate-offset store, or its first ALU
 * instruction dual-issues with a pairable predecessor that writes none of its registers. */
static uint64_t tm_seam(tm_entry *e, const tm_cost_entry *p, const tm_cost_entry *c,
                        uint64_t t) {
    uint32_t kind = c->head & 0xFFFFu, regs = c->head >> 16;
    uint32_t tail = p->tail & TM_TAIL_KIND;
    if (kind == TM_HEAD_LOAD &&
        ((tail == TM_TAIL_LOAD && !((p->tail >> 16) & regs)) || tail == TM_TAIL_STORE_IMM)) {
        e->s[TM_S_SEAM_PIPE]++;
        return (uint64_t)((int64_t)t + c->seam_pipe);
    }
    if (kind == TM_HEAD_ALU && (p->tail & TM_TAIL_PAIRS) && !(p->tail_written & regs)) {
        e->s[TM_S_SEAM_PAIR]++;
        return (uint64_t)((int64_t)t + c->seam_pair);
    }
    return t;
}

/* The previous block ended in a conditional branch: the successor says whether it was taken.
 * A predicted end costs only when its block's 2-bit counter guessed wrong. */
static void tm_resolve_branch(tm_ctx *ctx, uint64_t address) {
    tm_entry *p = ctx->last;
    if (!p || !p->desc || (p->desc->end_kind != TM_END_CONDITIONAL &&
                           p->desc->end_kind != TM_END_PREDICTED)) {
        return;
    }
    int taken = address != (uint64_t)p->addr + p->size;
    uint64_t c = taken ? p->desc->taken : p->desc->not_taken;
    if (p->desc->end_kind == TM_END_PREDICTED) {
        uint8_t *slot = &ctx->predict[((p->addr + p->size) >> 1) & (TM_PREDICT_ENTRIES - 1u)];
        int one_bit = p->desc->predictor == TM_PREDICT_1BIT;
        uint32_t state = *slot ? *slot - 1u
                         : one_bit ? 0u : p->desc->predictor == TM_PREDICT_2BIT_TAKEN ? 2u : 1u;
        if ((one_bit ? state == 1u : state >= 2u) == taken) {
            c = 0;
        } else {
            p->s[TM_S_MISPREDICT]++;
        }
        if (one_bit) {
            state = (uint32_t)taken;
        } else {
            state = taken ? (state < 3u ? state + 1u : 3u) : (state > 0u ? state - 1u : 0u);
        }
        *slot = (uint8_t)(state + 1u);
    }
    p->s[taken ? TM_S_TAKEN : TM_S_NOT_TAKEN]++;
    p->s[TM_S_BRANCH] += c;
    p->s[TM_S_CYCLES] += c;
    ctx->cycles += c;
    if (taken) {
        ctx->stream_valid = 0;
    }
}

static void tm_read_ccr(tm_ctx *ctx, void *uc) {
    uint32_t ccr = 0;
    if (ctx->mem_read && ctx->mem_read(uc, TM_SCB_CCR, &ccr, 4) == 0) {
        uint32_t enabled = ccr & (TM_CCR_IC | TM_CCR_DC);
        if (enabled != ctx->l1_enabled) {
            ctx->l1_enabled = enabled;
            ctx->l1_icache.epoch++;  /* the fetch path changed: re-check every block */
            ctx->accel_icache.epoch++;
        }
    }
}

static tm_entry *tm_lookup(tm_ctx *ctx, uint32_t addr32, uint32_t size, int32_t layer) {
    tm_entry *e = tm_slot(ctx->table, ctx->capacity, addr32, size, layer);
    if (e->used) {
        return e;
    }
    tm_cost_entry *desc = tm_block_cost(ctx, addr32, size);
    if (!desc) {
        return NULL;
    }
    if ((ctx->used + 1) * 10 > ctx->capacity * 7) {
        if (tm_grow(ctx) != 0) {
            ctx->flags |= TM_FLAG_OOM;
            return NULL;
        }
        e = tm_slot(ctx->table, ctx->capacity, addr32, size, layer);
    }
    memset(e, 0, sizeof *e);
    e->addr = addr32;
    e->size = size;
    e->layer = layer;
    e->used = 1;
    e->desc = desc;
    ctx->used++;
    return e;
}

/* The UC_HOOK_BLOCK callback (uc_cb_hookcode_t). */
void tm_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data) {
    tm_ctx *ctx = (tm_ctx *)user_data;

    /* the branch that ended the previous block is decided by where we are now (also when
     * an interrupt comes first: execution continues here after it returns) */
    tm_resolve_branch(ctx, address);

    if (ctx->alarm_cycles && ctx->cycles >= ctx->alarm_cycles) {
        /* before any counting or layer switch: the block does not run now (emu_stop in a
         * block hook stops before it) and is counted once when emulation resumes at it;
         * the exception handler that runs first is no branch successor of anything */
        ctx->alarm_cycles = 0;
        ctx->flags |= TM_FLAG_ALARM;
        ctx->last = NULL;
        ctx->emu_stop(uc);
        return;
    }
    if (address == ctx->prof_begin_addr) {
        uint32_t r0 = 0;
        ctx->reg_read(uc, TM_ARM_REG_R0, &r0);
        ctx->current_layer = (int32_t)r0;
        tm_read_ccr(ctx, uc);
    } else if (address == ctx->prof_end_addr) {
        ctx->current_layer = -1;
    } else if (address == ctx->evt_begin_addr) {
        ctx->current_layer = (int32_t)ctx->evt_counter;
        if (ctx->evt_tags && ctx->evt_counter < ctx->evt_tags_cap) {
            uint32_t r1 = 0;
            ctx->reg_read(uc, TM_ARM_REG_R1, &r1);
            ctx->evt_tags[ctx->evt_counter] = r1;
        }
        ctx->evt_counter++;
        if (ctx->evt_wrap && ctx->evt_counter >= ctx->evt_wrap) {
            ctx->evt_counter = 0;
        }
        tm_read_ccr(ctx, uc);
    } else if (address == ctx->evt_end_addr) {
        ctx->current_layer = -1;
    }

    ctx->executed_bytes += size;
    ctx->blocks_executed++;
    if ((ctx->blocks_executed & 0xFFFFFu) == 0) {
        tm_read_ccr(ctx, uc);  /* firmware without layer marks enables its caches too */
    }

    uint32_t addr32 = (uint32_t)address;
    int32_t layer = ctx->current_layer;
    /* the predecessor ran straight into this block (the emulator split the code here,
     * the core does not): its last instruction may pipeline or pair with our first */
    const tm_cost_entry *prev_fell_through =
        ctx->last && ctx->last->desc && ctx->last->desc->end_kind == TM_END_NONE &&
        (uint64_t)ctx->last->addr + ctx->last->size == address ? ctx->last->desc : NULL;
    tm_entry *e = ctx->last;
    if (!(e && e->addr == addr32 && e->size == size && e->layer == layer)) {
        e = tm_lookup(ctx, addr32, size, layer);
        if (!e) {
            ctx->last = NULL;
            ctx->emu_stop(uc);
            return;
        }
    }
    const tm_cost_entry *c = e->desc;
    if (c->end_kind == TM_END_SKIP) {
        e->s[TM_S_COUNT]++;
        ctx->last = e;
        return;
    }
    uint64_t t = c->base;
    if (c->head && prev_fell_through) {
        t = tm_seam(e, prev_fell_through, c, t);
    }
    if (c->end_kind == TM_END_TAKEN) {
        t += c->taken;
        e->s[TM_S_TAKEN]++;
        e->s[TM_S_BRANCH] += c->taken;
    }
    if (ctx->timing.enabled) {
        uint64_t raw = tm_fetch(ctx, e, addr32, size, ctx->cycles, c->base);
        uint64_t fetch = tm_weighted(raw, ctx->timing.ifetch_weight);
        e->s[TM_S_IFETCH] += raw;
        t += fetch;
        if (c->n_ops) {
            /* accesses issue after the block's fetch stall, at their place in the block */
            uint32_t extra = 0;
            raw = tm_data(ctx, uc, e, c, ctx->cycles + fetch, size, &extra);
            e->s[TM_S_DATA] += raw;
            t += tm_weighted(raw, ctx->timing.data_weight);
            t += (uint64_t)extra * ctx->timing.unaligned_cycles;
        }
        if (c->end_kind == TM_END_TAKEN) {
            ctx->stream_valid = 0;
        }
    }
    e->s[TM_S_COUNT]++;
    e->s[TM_S_CYCLES] += t;
    ctx->cycles += t;
    ctx->last = e;

    if (ctx->budget_insns && (ctx->executed_bytes >> 1) > ctx->budget_insns &&
        !(ctx->flags & TM_FLAG_BUDGET)) {
        ctx->flags |= TM_FLAG_BUDGET;
        ctx->emu_stop(uc);
    }
}

/* Forget the predecessor block: the next block's start says nothing about its branch
 * (Python calls this when it redirects execution, e.g. at an intercepted ABI entry). */
void tm_ctx_break_chain(tm_ctx *ctx) { ctx->last = NULL; }

/* Allocate the tables (capacity rounded up to a power of two) and reset all running state. */
int tm_ctx_init(tm_ctx *ctx, uint64_t capacity) {
    uint64_t cap = 16;
    while (cap < capacity) {
        cap *= 2;
    }
    tm_entry *table = calloc(cap, sizeof(tm_entry));
    tm_cost_entry *costs = calloc(1024, sizeof(tm_cost_entry));
    if (!table || !costs) {
        free(table);
        free(costs);
        return -1;
    }
    free(ctx->table);
    if (ctx->costs) {
        tm_free_costs(ctx);
    }
    ctx->table = table;
    ctx->capacity = cap;
    ctx->used = 0;
    ctx->last = NULL;
    ctx->costs = costs;
    ctx->cost_capacity = 1024;
    ctx->cost_used = 0;
    ctx->executed_bytes = 0;
    ctx->blocks_executed = 0;
    ctx->cycles = 0;
    ctx->current_layer = -1;
    ctx->evt_counter = 0;
    ctx->flags = 0;
    ctx->stream_valid = 0;
    ctx->stream_ready = 0;
    ctx->flash_free = 0;
    ctx->code_region = UINT32_MAX;
    ctx->alarm_cycles = 0;
    memset(ctx->predict, 0, sizeof ctx->predict);
    ctx->align_faults = 0;
    ctx->align_fault_pc = 0;
    return 0;
}

/* Install the timing configuration (copied) and allocate its caches. */
int tm_ctx_configure_timing(tm_ctx *ctx, const tm_timing_config *config) {
    ctx->timing = *config;
    if (ctx->timing.n_regions > TM_MAX_REGIONS) {
        return -1;
    }
    uint32_t flash_shift = 3, l1_shift = 3;
    for (uint32_t i = 0; i < ctx->timing.n_regions; i++) {
        const tm_region *r = &ctx->timing.regions[i];
        if (r->kind == TM_KIND_FLASH) {
            flash_shift = r->access_shift;
        }
        if (r->cacheable) {
            l1_shift = r->access_shift;
        }
    }
    if (tm_cache_init(&ctx->accel_icache, config->accel_icache, flash_shift) ||
        tm_cache_init(&ctx->accel_dcache, config->accel_dcache, flash_shift) ||
        tm_cache_init(&ctx->l1_icache, config->l1_icache, l1_shift) ||
        tm_cache_init(&ctx->l1_dcache, config->l1_dcache, l1_shift)) {
        return -1;
    }
    return 0;
}

void tm_ctx_release(tm_ctx *ctx) {
    if (ctx->costs) {
        tm_free_costs(ctx);
    }
    ctx->cost_capacity = 0;
    ctx->cost_used = 0;
    free(ctx->table);
    ctx->table = NULL;
    ctx->capacity = 0;
    ctx->used = 0;
    ctx->last = NULL;
    tm_cache_free(&ctx->accel_icache);
    tm_cache_free(&ctx->accel_dcache);
    tm_cache_free(&ctx->l1_icache);
    tm_cache_free(&ctx->l1_dcache);
}

/* Copy the table into caller-provided arrays of length >= ctx->used (stats: used x
 * TM_S_COLUMNS, row-major); returns entries written. base: the row block's static cost. */
uint64_t tm_ctx_export(const tm_ctx *ctx, uint32_t *addr, uint32_t *size, int32_t *layer,
                       uint64_t *base, uint64_t *stats, uint64_t max_entries) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < ctx->capacity && n < max_entries; i++) {
        const tm_entry *e = &ctx->table[i];
        if (e->used) {
            addr[n] = e->addr;
            size[n] = e->size;
            layer[n] = e->layer;
            base[n] = e->desc ? e->desc->base : 0;
            memcpy(stats + n * TM_S_COLUMNS, e->s, sizeof e->s);
            n++;
        }
    }
    return n;
}

uint64_t tm_ctx_size(void) { return sizeof(tm_ctx); }

uint64_t tm_timing_config_size(void) { return sizeof(tm_timing_config); }

uint64_t tm_block_desc_size(void) { return sizeof(tm_block_desc); }

uint32_t tm_stat_columns(void) { return TM_S_COLUMNS; }

uint32_t tm_abi_version(void) { return TM_ABI_VERSION; }

uint32_t tm_cycle_frac_bits(void) { return TM_CYCLE_FRAC_BITS; }

static struct PyModuleDef tm_module = {
    PyModuleDef_HEAD_INIT, "_counthook",
    "Native Unicorn block-counting hook; used through ctypes, see tinymeter.sim.native_hook.", -1,
    NULL,
};

PyMODINIT_FUNC PyInit__counthook(void) { return PyModule_Create(&tm_module); }
