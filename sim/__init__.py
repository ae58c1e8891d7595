"""tinymeter.sim"""
