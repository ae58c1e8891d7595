/* Hardware I/O of a board, generated per board into tm_board.c (firmware/boardgen.py)
 * and used by platform/cortexm.c in the UART I/O build (TM_IO_UART): the boot register
 * writes, the UART that carries the report, and the power-monitor marker pins. */
#ifndef TM_BOARD_H
#define TM_BOARD_H

#include <stdint.h>

/* reg = (reg & ~clear) | set; then, if wait_mask, wait (bounded) until
 * (reg & wait_mask) == wait_value. */
typedef struct {
  uint32_t addr, clear, set, wait_mask, wait_value;
} tm_reg_init;

/* Register offsets and bits of the report UART. */
typedef struct {
  uint32_t base, data_off, status_off, tx_empty, tx_done, brr_off, brr, cr1_off, cr1_enable;
} tm_uart_regs;

/* A GPIO line: write set_value to set_addr to raise it, clear_value to clear_addr to
 * lower it; all zero = not wired. */
typedef struct {
  uint32_t set_addr, set_value, clear_addr, clear_value;
} tm_gpio_mark;

extern const tm_reg_init tm_board_init[];
extern const uint32_t tm_board_init_count;
extern const tm_uart_regs tm_board_uart;
extern const tm_gpio_mark tm_board_mark_inference;
extern const tm_gpio_mark tm_board_mark_layer;
/* 32-bit core-clock counter read instead of SysTick on ARMv6-M (0 = none), and the
 * bits of a cycle difference that count (0xFFFFFF with the 24-bit SysTick). */
extern const uint32_t tm_board_cycle_counter;
extern const uint32_t tm_board_cycle_mask;
extern const uint32_t tm_board_l1_icache;
extern const uint32_t tm_board_l1_dcache;

#endif
