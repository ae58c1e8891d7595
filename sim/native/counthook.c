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
 * calls cost_fn once (a ctypes callback into the Python cost model) and
 * keeps the returned per-execution cost in a second small table keyed by
 * (address, size) only, so a block executed in several layers is costed
 * once.  Costs are fixed point with TM_CYCLE_FRAC_BITS fractional bits: the
 * cost model has fractional cycles (taken-branch fractions, dual issue) and
 * integer arithmetic keeps the hook's sums exactly reproducible from
 * count x cost.  Every execution adds the cost to the running 64-bit
 * counter ctx->cycles (what the emulated DWT CYCCNT / SysTick read) and to
 * the (block, layer) entry.  A cost of TM_COST_ERROR from the callback
 * means "the callback failed": the hook sets TM_FLAG_COST and stops.
 */
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TM_ABI_VERSION 2u
#define TM_CYCLE_FRAC_BITS 16u /* cycles are stored x 2^16 */
#define TM_NO_ADDR UINT64_MAX
#define TM_FLAG_BUDGET 1u
#define TM_FLAG_OOM 2u
#define TM_FLAG_COST 4u
#define TM_FLAG_ALARM 8u
#define TM_ARM_REG_R0 66 /* UC_ARM_REG_R0 in unicorn/arm.h */
#define TM_ARM_REG_R1 67
#define TM_COST_ERROR UINT64_MAX

typedef int (*tm_reg_read_fn)(void *uc, int regid, void *value);
typedef int (*tm_emu_stop_fn)(void *uc);
/* Per-execution cost of the block (fixed point), or TM_COST_ERROR. */
typedef uint64_t (*tm_cost_fn)(void *user, uint32_t addr, uint32_t size);

typedef struct tm_entry {
    uint32_t addr;
    uint32_t size;
    int32_t layer;
    uint32_t used;
    uint64_t count;
    uint64_t cost;    /* per execution, fixed point */
    uint64_t cycles;  /* count * cost, summed as it runs */
} tm_entry;

typedef struct tm_cost_entry {
    uint32_t addr;
    uint32_t size;
    uint64_t cost;
    uint32_t used;
    uint32_t pad;
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
    tm_entry *last;             /* one-entry cache: loops hit the same key back to back */
    int32_t current_layer;
    uint32_t evt_counter;
    uint32_t evt_wrap;
    uint32_t flags;
    /* cycle alarm (fixed point; 0 = none): the first block starting at or after it stops
     * emulation uncounted, so Python can deliver an interrupt and resume there */
    uint64_t alarm_cycles;
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
    for (uint64_t i = 0; i < ctx->capacity; i++) {
        tm_entry *old = &ctx->table[i];
        if (old->used) {
            *tm_slot(fresh, new_capacity, old->addr, old->size, old->layer) = *old;
        }
    }
    free(ctx->table);
    ctx->table = fresh;
    ctx->capacity = new_capacity;
    ctx->last = NULL;
    return 0;
}

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
    free(ctx->costs);
    ctx->costs = fresh;
    ctx->cost_capacity = new_capacity;
    return 0;
}

/* Cost of one execution of (addr, size): cached, else asked once from cost_fn.
 * Returns -1 on out-of-memory; TM_COST_ERROR is passed through in *cost. */
static int tm_block_cost(tm_ctx *ctx, uint32_t addr, uint32_t size, uint64_t *cost) {
    if (!ctx->cost_fn) {
        *cost = 0;
        return 0;
    }
    tm_cost_entry *c = tm_cost_slot(ctx->costs, ctx->cost_capacity, addr, size);
    if (c->used) {
        *cost = c->cost;
        return 0;
    }
    uint64_t value = ctx->cost_fn(ctx->cost_user, addr, size);
    *cost = value;
    if (value == TM_COST_ERROR) {
        return 0;
    }
    if ((ctx->cost_used + 1) * 10 > ctx->cost_capacity * 7) {
        if (tm_cost_grow(ctx) != 0) {
            return -1;
        }
        c = tm_cost_slot(ctx->costs, ctx->cost_capacity, addr, size);
    }
    c->addr = addr;
    c->size = size;
    c->cost = value;
    c->used = 1;
    ctx->cost_used++;
    return 0;
}

/* The UC_HOOK_BLOCK callback (uc_cb_hookcode_t). */
void tm_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data) {
    tm_ctx *ctx = (tm_ctx *)user_data;

    if (ctx->alarm_cycles && ctx->cycles >= ctx->alarm_cycles) {
        /* before any counting or layer switch: the block does not run now (emu_stop in a
         * block hook stops before it) and is counted once when emulation resumes at it */
        ctx->alarm_cycles = 0;
        ctx->flags |= TM_FLAG_ALARM;
        ctx->emu_stop(uc);
        return;
    }
    if (address == ctx->prof_begin_addr) {
        uint32_t r0 = 0;
        ctx->reg_read(uc, TM_ARM_REG_R0, &r0);
        ctx->current_layer = (int32_t)r0;
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
    } else if (address == ctx->evt_end_addr) {
        ctx->current_layer = -1;
    }

    ctx->executed_bytes += size;
    ctx->blocks_executed++;

    uint32_t addr32 = (uint32_t)address;
    int32_t layer = ctx->current_layer;
    tm_entry *e = ctx->last;
    if (!(e && e->addr == addr32 && e->size == size && e->layer == layer)) {
        e = tm_slot(ctx->table, ctx->capacity, addr32, size, layer);
        if (!e->used) {
            uint64_t cost = 0;
            if (tm_block_cost(ctx, addr32, size, &cost) != 0) {
                ctx->flags |= TM_FLAG_OOM;
                ctx->emu_stop(uc);
                return;
            }
            if (cost == TM_COST_ERROR) {
                ctx->flags |= TM_FLAG_COST;
                ctx->emu_stop(uc);
                return;
            }
            if ((ctx->used + 1) * 10 > ctx->capacity * 7) {
                if (tm_grow(ctx) != 0) {
                    ctx->flags |= TM_FLAG_OOM;
                    ctx->emu_stop(uc);
                    return;
                }
                e = tm_slot(ctx->table, ctx->capacity, addr32, size, layer);
            }
            e->addr = addr32;
            e->size = size;
            e->layer = layer;
            e->used = 1;
            e->count = 0;
            e->cost = cost;
            e->cycles = 0;
            ctx->used++;
        }
        ctx->last = e;
    }
    e->count++;
    e->cycles += e->cost;
    ctx->cycles += e->cost;

    if (ctx->budget_insns && (ctx->executed_bytes >> 1) > ctx->budget_insns &&
        !(ctx->flags & TM_FLAG_BUDGET)) {
        ctx->flags |= TM_FLAG_BUDGET;
        ctx->emu_stop(uc);
    }
}

/* Allocate the table (capacity rounded up to a power of two) and reset all running state. */
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
    free(ctx->costs);
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
    ctx->alarm_cycles = 0;
    return 0;
}

void tm_ctx_release(tm_ctx *ctx) {
    free(ctx->costs);
    ctx->costs = NULL;
    ctx->cost_capacity = 0;
    ctx->cost_used = 0;
    free(ctx->table);
    ctx->table = NULL;
    ctx->capacity = 0;
    ctx->used = 0;
    ctx->last = NULL;
}

/* Copy the table into caller-provided arrays of length >= ctx->used; returns entries written. */
uint64_t tm_ctx_export(const tm_ctx *ctx, uint32_t *addr, uint32_t *size, int32_t *layer,
                       uint64_t *count, uint64_t *cost, uint64_t *cycles,
                       uint64_t max_entries) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < ctx->capacity && n < max_entries; i++) {
        const tm_entry *e = &ctx->table[i];
        if (e->used) {
            addr[n] = e->addr;
            size[n] = e->size;
            layer[n] = e->layer;
            count[n] = e->count;
            cost[n] = e->cost;
            cycles[n] = e->cycles;
            n++;
        }
    }
    return n;
}

uint64_t tm_ctx_size(void) { return sizeof(tm_ctx); }

uint32_t tm_abi_version(void) { return TM_ABI_VERSION; }

uint32_t tm_cycle_frac_bits(void) { return TM_CYCLE_FRAC_BITS; }

static struct PyModuleDef tm_module = {
    PyModuleDef_HEAD_INIT, "_counthook",
    "Native Unicorn block-counting hook; used through ctypes, see tinymeter.sim.native_hook.", -1,
    NULL,
};

PyMODINIT_FUNC PyInit__counthook(void) { return PyModule_Create(&tm_module); }
