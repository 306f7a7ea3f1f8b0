"""Key performance indicators per site and province against the plans' yearly targets."""
