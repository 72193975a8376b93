/*
 * log.h - operator-facing diagnostics on stderr (not the audit trail).
 *
 * Lines look like `2026-06-15T12:04:01Z byline[123] warn: message`.
 * Thread-safe: each line is one write(2).
 */
#ifndef BL_CORE_LOG_H
#define BL_CORE_LOG_H

#include "core/common.h"

enum { BL_LOG_DEBUG, BL_LOG_INFO, BL_LOG_WARN, BL_LOG_ERROR };

/* Sets the lowest level printed (default BL_LOG_INFO). */
void bl_log_set_level(int level);

void bl_log(int level, const char *fmt, ...) BL_PRINTF(2, 3);

#define bl_debug(...) bl_log(BL_LOG_DEBUG, __VA_ARGS__)
#define bl_info(...)  bl_log(BL_LOG_INFO, __VA_ARGS__)
#define bl_warn(...)  bl_log(BL_LOG_WARN, __VA_ARGS__)
#define bl_error(...) bl_log(BL_LOG_ERROR, __VA_ARGS__)

#endif
