"""An example third-party plugin: one upscaler and one command."""

from sdtui import hookimpl


class NearestDouble:
    name = "Example Nearest"
    aliases = ("example_nearest",)

    def upscale(self, image, scale):
        from PIL import Image

        size = (round(image.width * scale), round(image.height * scale))
        return image.resize(size, Image.Resampling.NEAREST)


class GreetCommand:
    name = "example-greet"
    help = "greet from the example plugin"

    def add_arguments(self, parser):
        parser.add_argument("who", nargs="?", default="world")

    def run(self, args):
        print(f"greetings, {args.who}")
        return 0


@hookimpl
def register_upscalers(register):
    register(NearestDouble())


@hookimpl
def register_commands(register):
    register(GreetCommand())
