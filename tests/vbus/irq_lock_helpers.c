// SPDX-License-Identifier: GPL-2.0
/* The module's IRQ-saving lock helpers, for the copy of rust/abstractions/irq_lock.rs here. */
#include "../../rust/abstractions/irq_lock_helpers.c"
