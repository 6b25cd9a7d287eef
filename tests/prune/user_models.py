"""Tiny user models written into files by the model-source tests: the text of a user's `file.py`."""

MODEL_FILE = '''
from torch import nn


def linear_head():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 5))


def conv_head():
    """SqueezeNet's ending: a 1x1 convolution to the classes, then ReLU and global pooling."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 1), nn.ReLU(inplace=True),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


class LateProbe(nn.Module):
    """A Linear head, then a convolution run after it whose output is thrown away."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 5)
        self.probe = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        features = self.features(x)
        logits = self.head(features.mean((2, 3)))
        self.probe(features)
        return logits


def late_probe():
    return LateProbe()


def wide():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


def raises():
    raise RuntimeError("the weights are elsewhere\\nsecond line")


def not_a_module():
    return 42


def feature_map():
    return nn.Conv2d(3, 5, 1)
'''
