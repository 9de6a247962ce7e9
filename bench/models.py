"""models.py: the benchmark's models, shared by prepare.py and torch_bench.py.

Every model is a torchvision classification architecture at batch 1,
1x3x224x224, float32, in eval mode.  Pretrained weights cannot be downloaded
here, so the weights are torchvision's own random initialisation after
torch.manual_seed(SEED): deterministic, and saved once by prepare.py so that
cnnc, ONNX Runtime and PyTorch all run the very same numbers.

`plain_cnn` is not part of the default set: a small VGG-like net made only of
the ops cnnc has supported from the start (conv2d, relu, maxpool2d, flatten,
dense), so the benchmark's cnnc path (export, compile, link, check, time) can
be exercised before the torchvision models compile.
"""

import torch
import torch.nn as nn

SEED = 20240601
INPUT_SHAPE = (1, 3, 224, 224)
DEFAULT_MODELS = ["resnet18", "resnet50", "mobilenet_v2", "squeezenet1_1", "vgg16"]
EXTRA_MODELS = ["plain_cnn"]


class PlainCNN(nn.Module):
    def __init__(self):
        super().__init__()
        chans = [3, 16, 32, 64, 64, 64]
        feats = []
        for cin, cout in zip(chans, chans[1:]):
            feats += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(),
                      nn.MaxPool2d(2)]
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Linear(64 * 7 * 7, 1000)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def build(name):
    """The architecture `name` with freshly initialised (seeded) weights."""
    torch.manual_seed(SEED)
    if name == "plain_cnn":
        model = PlainCNN()
    elif name in DEFAULT_MODELS:
        import torchvision.models as tvm
        model = getattr(tvm, name)(weights=None)
    else:
        raise ValueError("unknown model '%s' (known: %s)"
                         % (name, ", ".join(DEFAULT_MODELS + EXTRA_MODELS)))
    return model.eval()


def count_flops(model, x):
    """2 * multiply-accumulates of every Conv2d and Linear layer for input x.

    Counted with forward hooks, so it follows what the model really runs.
    Bias additions, batchnorm, activations, pooling and additions are not
    counted (they are a fraction of a percent of these nets' work)."""
    macs = [0]

    def conv_hook(m, inp, out):
        kh, kw = m.kernel_size
        macs[0] += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m, inp, out):
        macs[0] += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return 2 * macs[0]
