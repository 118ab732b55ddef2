"""bot/deps"""
