"""The collector's processing chain: receivers feed batches through processors into sinks."""
