"""Operations: the offline installation bundle (``soc package``), backup and restore."""
