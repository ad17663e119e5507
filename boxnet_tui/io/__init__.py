"""Readers and writers of every file a cryo-EM user has: micrographs, picks, masks, exports."""
