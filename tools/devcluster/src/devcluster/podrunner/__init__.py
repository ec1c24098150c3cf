"""Plays the kubelet for the project's own images on kwok nodes: their pods run as local processes."""
