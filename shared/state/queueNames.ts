/**
 * The app's own queues, by name: the functions' triggers and bindings name them when they
 * register, so this module imports nothing (registering must not load the app).
 */
export const POLL_QUEUE = 'mail-poll';
export const SEND_QUEUE = 'mail-send';
