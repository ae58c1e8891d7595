"""tinymeter.models"""
