"""Use cases: combine git, store and events; raise AppError for anything a client caused."""
