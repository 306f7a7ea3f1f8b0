"""Business rules of the systems package; routers stay thin over these."""
