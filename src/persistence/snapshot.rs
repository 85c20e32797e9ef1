//! SAVE, BGSAVE, save points (in progress).
