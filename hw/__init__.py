"""tinymeter.hw"""
