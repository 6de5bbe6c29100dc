"""Blob storage for attachments: the filesystem (default) and S3-compatible object stores."""
