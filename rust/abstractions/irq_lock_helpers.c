// SPDX-License-Identifier: GPL-2.0
/*
 * C wrappers of spin_lock_irqsave() and friends for rust/abstractions/irq_lock.rs.
 *
 * spin_lock_irqsave() is a macro, and the function behind it (_raw_spin_lock_irqsave) is
 * inlined on configurations that set CONFIG_INLINE_SPIN_LOCK_IRQSAVE, so Rust cannot call it
 * directly; the 7.2 kernel crate has helpers for spin_lock() and spin_trylock() only. These
 * wrappers do for the IRQ-saving variants what rust/helpers/spinlock.c does for those.
 * The test bus module (tests/vbus) compiles this file too.
 */

#include <linux/spinlock.h>

/* Called from Rust only: the prototypes keep -Wmissing-prototypes quiet. */
unsigned long ipmb_spin_lock_irqsave(spinlock_t *lock);
void ipmb_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags);
int ipmb_spin_trylock_irqsave(spinlock_t *lock, unsigned long *flags);

unsigned long ipmb_spin_lock_irqsave(spinlock_t *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

void ipmb_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}

int ipmb_spin_trylock_irqsave(spinlock_t *lock, unsigned long *flags)
{
	return spin_trylock_irqsave(lock, *flags);
}
