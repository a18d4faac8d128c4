"""The learning experience: lesson player, progress, media, drip schedule, quizzes, certificates."""
