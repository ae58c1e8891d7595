"""tinymeter.firmware"""
