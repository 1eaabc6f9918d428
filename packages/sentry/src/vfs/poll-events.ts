/** poll(2) event bits from <asm-generic/poll.h>, shared by file readiness and the poll family. */
export const POLLIN = 0x1;
export const POLLPRI = 0x2;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const POLLRDNORM = 0x40;
export const POLLRDBAND = 0x80;
export const POLLWRNORM = 0x100;
export const POLLWRBAND = 0x200;

/** Events Linux reports for files without a poll method (regular files, most devices): always ready. */
export const ALWAYS_READY = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

/** Cancels a readiness watch. */
export type CancelWatch = () => void;
