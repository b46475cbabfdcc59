"""Services: the business operations below the routers (keyword-only functions on a session)."""
